/*
 * test_offset_map.c — the exactly-once bookkeeping: offset maps (set, reserve and widen,
 * names refused as a manifest refuses them, insertion order kept, removal, copies) held
 * to a naive reference on random operations; and the cp/ and rs/ entries a flush of
 * sourced rows commits, byte for byte as manifest.h writes them down.
 */
#include <fcntl.h>
#include <unistd.h>

#include "engine/manifest.h"
#include "engine/offset_map.h"
#include "engine/table.h"
#include "test.h"

TEST(set_next_and_absent)
{
    offset_map m = {0};
    ASSERT_EQ(offset_map_next(&m, "kafka:o", 0), -1);
    ASSERT_EQ(offset_map_lo(&m, "kafka:o", 0), -1);
    ASSERT(offset_map_find(&m, "kafka:o", 0) == NULL);
    ASSERT_EQ(offset_map_set(&m, "kafka:o", 0, 10), 0);
    ASSERT_EQ(offset_map_set(&m, "kafka:o", 1, 20), 0);
    ASSERT_EQ(offset_map_set(&m, "kafka:p", 0, 30), 0);
    ASSERT_EQ(offset_map_set(&m, "kafka:o", 0, 11), 0); /* in place */
    ASSERT_EQ(m.n, 3);
    ASSERT_EQ(offset_map_next(&m, "kafka:o", 0), 11);
    ASSERT_EQ(offset_map_next(&m, "kafka:o", 1), 20);
    ASSERT_EQ(offset_map_next(&m, "kafka:p", 0), 30);
    ASSERT_EQ(offset_map_next(&m, "kafka:p", 1), -1);
    ASSERT_EQ(offset_map_lo(&m, "kafka:o", 0), INT64_MAX); /* never given a range */
    offset_map_free(&m);
    ASSERT_EQ(m.n, 0);
    ASSERT(m.e == NULL);
    ASSERT_EQ(offset_map_set(&m, "again", 0, 1), 0); /* reusable after free */
    offset_map_free(&m);
}

TEST(names_are_refused_as_a_manifest_refuses_them)
{
    offset_map m = {0};
    char name[OFFSET_NAME_MAX + 1];
    memset(name, 'n', sizeof name);
    name[OFFSET_NAME_MAX - 1] = 0; /* 255 bytes: the longest */
    ASSERT_EQ(offset_map_set(&m, name, 0, 1), 0);
    name[OFFSET_NAME_MAX - 1] = 'n';
    name[OFFSET_NAME_MAX] = 0; /* 256 bytes */
    ASSERT_EQ(offset_map_set(&m, name, 0, 1), STRATA_EINVAL);
    ASSERT_EQ(offset_map_reserve(&m, name, 0), STRATA_EINVAL);
    ASSERT_EQ(offset_map_set_range(&m, name, 0, 1, 2), STRATA_EINVAL);
    ASSERT_EQ(offset_map_set(&m, "", 0, 1), STRATA_EINVAL);
    ASSERT_EQ(m.n, 1);
    /* The same limits as the manifest's checkpoints, whose names these become. */
    ASSERT_EQ(OFFSET_NAME_MAX, MANIFEST_SOURCE_MAX);
    manifest man = {0};
    ASSERT_EQ(manifest_set_checkpoint(&man, name, 0, 1), STRATA_EINVAL);
    name[OFFSET_NAME_MAX - 1] = 0;
    ASSERT_EQ(manifest_set_checkpoint(&man, name, 0, 1), 0);
    manifest_free(&man);
    offset_map_free(&m);
}

TEST(reserve_then_widen_cannot_fail)
{
    offset_map m = {0};
    ASSERT_EQ(offset_map_reserve(&m, "s", 2), 0);
    offset_entry *e = offset_map_find(&m, "s", 2);
    ASSERT(e);
    ASSERT_EQ(e->lo, INT64_MAX); /* the empty range every reader ignores */
    ASSERT_EQ(e->next, -1);
    offset_map_widen(&m, "s", 2, 100, 150);
    ASSERT_EQ(offset_map_lo(&m, "s", 2), 100);
    ASSERT_EQ(offset_map_next(&m, "s", 2), 150);
    offset_map_widen(&m, "s", 2, 120, 140); /* inside: no change */
    ASSERT_EQ(offset_map_lo(&m, "s", 2), 100);
    ASSERT_EQ(offset_map_next(&m, "s", 2), 150);
    offset_map_widen(&m, "s", 2, 90, 200);
    ASSERT_EQ(offset_map_lo(&m, "s", 2), 90);
    ASSERT_EQ(offset_map_next(&m, "s", 2), 200);
    ASSERT_EQ(offset_map_reserve(&m, "s", 2), 0); /* present: left as it is */
    ASSERT_EQ(offset_map_lo(&m, "s", 2), 90);
    offset_map_widen(&m, "absent", 0, 1, 2); /* nothing to widen: nothing happens */
    ASSERT_EQ(m.n, 1);
    ASSERT_EQ(offset_map_set_range(&m, "s", 2, 5, 6), 0);
    ASSERT_EQ(offset_map_lo(&m, "s", 2), 5);
    ASSERT_EQ(offset_map_next(&m, "s", 2), 6);
    offset_map_free(&m);
}

TEST(order_is_insertion_order_and_removal_moves_the_last)
{
    offset_map m = {0};
    char name[32];
    for (int i = 0; i < 20; i++) { /* past the first growth */
        snprintf(name, sizeof name, "src%d", i);
        ASSERT_EQ(offset_map_set(&m, name, i % 3, i), 0);
    }
    ASSERT_EQ(offset_map_set(&m, "src4", 1, 400), 0);
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "src%d", i);
        ASSERT_STR_EQ(m.e[i].name, name);
        ASSERT_EQ(m.e[i].partition, i % 3);
        ASSERT_EQ(m.e[i].next, i == 4 ? 400 : i);
    }
    offset_map_remove(&m, "src3", 0);
    ASSERT_EQ(m.n, 19);
    ASSERT_STR_EQ(m.e[3].name, "src19");
    offset_map_remove(&m, "src3", 0); /* gone already */
    offset_map_remove(&m, "src5", 0); /* no such partition */
    ASSERT_EQ(m.n, 19);
    offset_map_remove(&m, "src18", 0); /* the last */
    ASSERT_EQ(m.n, 18);
    ASSERT_STR_EQ(m.e[17].name, "src17");

    offset_map c;
    ASSERT_EQ(offset_map_copy(&c, &m), 0);
    ASSERT_EQ(c.n, m.n);
    for (uint32_t i = 0; i < m.n; i++) {
        ASSERT_STR_EQ(c.e[i].name, m.e[i].name);
        ASSERT_EQ(c.e[i].next, m.e[i].next);
    }
    ASSERT_EQ(offset_map_set(&c, "src0", 0, -5), 0);
    ASSERT_EQ(offset_map_next(&m, "src0", 0), 0); /* the copy is its own */
    offset_map e = {0}, ce;
    ASSERT_EQ(offset_map_copy(&ce, &e), 0);
    ASSERT_EQ(ce.n, 0);
    offset_map_free(&ce);
    offset_map_free(&c);
    offset_map_free(&m);
}

/* Random operations against a naive reference: a list of (name, partition, lo, next) in
 * insertion order, with the same removal rule. */
typedef struct ref_entry {
    char name[8];
    int32_t part;
    int64_t lo, next;
} ref_entry;

TEST(random_operations_agree_with_a_reference)
{
    uint64_t seed = 0x9e3779b97f4a7c15u;
    offset_map m = {0};
    ref_entry ref[64];
    uint32_t nref = 0;
    for (int step = 0; step < 20000; step++) {
        char name[8];
        snprintf(name, sizeof name, "s%u", (unsigned)(test_rand_next(&seed) % 5));
        int32_t part = (int32_t)(test_rand_next(&seed) % 4);
        int64_t a = (int64_t)(test_rand_next(&seed) % 1000), b = a + (int64_t)(test_rand_next(&seed) % 50);
        uint32_t at = nref;
        for (uint32_t i = 0; i < nref; i++)
            if (ref[i].part == part && strcmp(ref[i].name, name) == 0)
                at = i;
        unsigned op = (unsigned)(test_rand_next(&seed) % 6);
        if (op <= 3 && at == nref) { /* every adding op adds with the empty range */
            ASSERT_LT(nref, 64);
            snprintf(ref[nref].name, sizeof ref[nref].name, "%s", name);
            ref[nref].part = part;
            ref[nref].lo = INT64_MAX;
            ref[nref].next = -1;
            nref++;
        }
        switch (op) {
        case 0:
            ASSERT_EQ(offset_map_set(&m, name, part, b), 0);
            ref[at].next = b;
            break;
        case 1:
            ASSERT_EQ(offset_map_set_range(&m, name, part, a, b), 0);
            ref[at].lo = a;
            ref[at].next = b;
            break;
        case 2:
            ASSERT_EQ(offset_map_reserve(&m, name, part), 0);
            break;
        case 3:
            ASSERT_EQ(offset_map_reserve(&m, name, part), 0);
            offset_map_widen(&m, name, part, a, b);
            ref[at].lo = a < ref[at].lo ? a : ref[at].lo;
            ref[at].next = b > ref[at].next ? b : ref[at].next;
            break;
        case 4:
            offset_map_remove(&m, name, part);
            if (at < nref)
                ref[at] = ref[--nref];
            break;
        default:
            ASSERT_EQ(offset_map_next(&m, name, part), at < nref ? ref[at].next : -1);
            ASSERT_EQ(offset_map_lo(&m, name, part), at < nref ? ref[at].lo : -1);
        }
        ASSERT_EQ(m.n, nref);
        for (uint32_t i = 0; i < nref; i++) {
            ASSERT_STR_EQ(m.e[i].name, ref[i].name);
            ASSERT_EQ(m.e[i].partition, ref[i].part);
            ASSERT_EQ(m.e[i].lo, ref[i].lo);
            ASSERT_EQ(m.e[i].next, ref[i].next);
        }
    }
    offset_map_free(&m);
}

/* The bytes of the checkpoint named name (partition part) in dir's MANIFEST: its whole
 * CHECKPOINT record (manifest.h) into out; its length, or 0 when absent. */
static size_t checkpoint_record(const char *dir, const char *name, int32_t part, uint8_t *out)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    uint8_t file[8192];
    FILE *f = fopen(path, "rb");
    ASSERT(f);
    size_t len = fread(file, 1, sizeof file, f);
    fclose(f);
    uint32_t nsegs, ncps;
    memcpy(&nsegs, file + 24, 4);
    memcpy(&ncps, file + 28, 4);
    size_t off = 32 + (size_t)nsegs * 44;
    for (uint32_t i = 0; i < ncps; i++) {
        uint16_t l;
        memcpy(&l, file + off, 2);
        int32_t p;
        memcpy(&p, file + off + 2 + l, 4);
        size_t rec = 2 + (size_t)l + 4 + 8;
        ASSERT(off + rec <= len - 8);
        if (l == strlen(name) && memcmp(file + off + 2, name, l) == 0 && p == part) {
            memcpy(out, file + off, rec);
            return rec;
        }
        off += rec;
    }
    ASSERT_EQ(off, len - 8); /* records fill the file up to its checksum */
    return 0;
}

/* manifest.h's example, made by a table: rows of kafka:orders partition 3, offsets 0 to
 * 1499, flushed: the day's MANIFEST holds cp/ = 1500 and rs/ = 1500, laid out as written
 * down. A replay of the same rows lands nothing. */
TEST(a_flush_commits_cp_and_rs_as_manifest_h_says)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "offset_map_cp");
    strata_schema s;
    schema_init(&s);
    snprintf(s.name, sizeof s.name, "orders");
    snprintf(s.cols[0].name, sizeof s.cols[0].name, "ts");
    s.cols[0].type = STRATA_TIMESTAMP;
    snprintf(s.cols[1].name, sizeof s.cols[1].name, "n");
    s.cols[1].type = STRATA_INT64;
    s.ncols = 2;
    s.time_col = 0;
    schema_apply_default_order(&s);
    strata_err err = {0};
    strata_table *t;
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    int64_t offs[1500];
    for (int i = 0; i < 1500; i++) {
        int64_t r = row_batch_add_row(&b);
        b.i[0][r] = 1704067200000 + i; /* 2024-01-01 */
        b.i[1][r] = i;
        offs[i] = i;
    }
    uint64_t skipped = 0;
    ASSERT_EQ(table_append_sourced(t, &b, "kafka:orders", 3, offs, 1500, &skipped, &err), 0);
    ASSERT_EQ(table_flush(t, true, &err), 0);
    char pdir[4200];
    snprintf(pdir, sizeof pdir, "%s/orders/raw/2024-01-01", dir);
    uint8_t rec[300];
    static const uint8_t want_cp[] = {0x0f, 0x00, 'c', 'p', '/', 'k', 'a', 'f', 'k', 'a', ':',
                                      'o', 'r', 'd', 'e', 'r', 's', 0x03, 0x00, 0x00, 0x00,
                                      0xdc, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    ASSERT_EQ(checkpoint_record(pdir, "cp/kafka:orders", 3, rec), sizeof want_cp);
    ASSERT(memcmp(rec, want_cp, sizeof want_cp) == 0);
    ASSERT_EQ(checkpoint_record(pdir, "rs/kafka:orders", 3, rec), sizeof want_cp);
    ASSERT(memcmp(rec, "\x0f\x00rs/kafka:orders\x03\x00\x00\x00\xdc\x05\x00\x00\x00\x00\x00\x00",
                  sizeof want_cp) == 0);
    ASSERT_EQ(table_source_resume(t, "kafka:orders", 3), 1500);
    table_close(t);

    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    ASSERT_EQ(table_source_resume(t, "kafka:orders", 3), 1500);
    ASSERT_EQ(table_append_sourced(t, &b, "kafka:orders", 3, offs, 1500, &skipped, &err), 0);
    ASSERT_EQ(skipped, 1500); /* below cp/: all replays */
    table_stats st;
    table_get_stats(t, &st);
    ASSERT_EQ(st.memtable_rows, 0);
    /* A source whose cp/ name would pass 255 bytes is refused. */
    char longsrc[300];
    memset(longsrc, 'x', 253);
    longsrc[253] = 0;
    ASSERT_EQ(table_append_sourced(t, &b, longsrc, 0, offs, 1500, NULL, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "is too long");
    row_batch_free(&b);
    table_close(t);
}

TEST_LIST(T(set_next_and_absent), T(names_are_refused_as_a_manifest_refuses_them),
          T(reserve_then_widen_cannot_fail), T(order_is_insertion_order_and_removal_moves_the_last),
          T(random_operations_agree_with_a_reference), T(a_flush_commits_cp_and_rs_as_manifest_h_says))
