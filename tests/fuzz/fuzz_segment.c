/*
 * fuzz_segment.c — libFuzzer target for the segment reader (engine/segment_read.c).
 *
 * Each input is treated as a segment file twice: as given, and "resummed" — with the
 * header and trailer magic/version repaired and every checksum the footer walk can reach
 * recomputed (block XXH3s, then the footer's), so that mutations get past the checksums
 * and reach the footer parser, the decompressors, the decoders, the dictionary and
 * roaring bitmap loaders and the pruning code. The bytes go into a memfd opened through
 * /proc/self/fd/N, so nothing touches the disk.
 *
 * Besides "never crash", the target checks the reader's promises and aborts when one is
 * broken: a failed open names the file; after segment_verify succeeds, every block reads
 * back, dictionary lookups find their own values, pruning never drops a granule holding a
 * row that segment_pred_match_* accepts, and segment_pred_rows is exactly the matching rows.
 *
 * Built as a libFuzzer target with -DSTRATA_FUZZ=ON (clang), and always as
 * replay_segment together with replay_main.c (see tests/fuzz/CMakeLists.txt).
 */
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/buf.h"
#include "engine/segment.h"
#include "engine/segment_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_segment: %s:%d: broken promise: %s\n", __FILE__, __LINE__, #c);   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Row-level checks decode whole columns; past this many rows only granules are read. */
#define MAX_CHECKED_ROWS (1u << 18)

static int mem_fd = -1;
static char mem_path[64];

static bool put_input(const uint8_t *data, size_t size)
{
    if (mem_fd < 0) {
        mem_fd = memfd_create("fuzz_segment", MFD_CLOEXEC);
        if (mem_fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(mem_path, sizeof mem_path, "/proc/self/fd/%d", mem_fd);
    }
    if (ftruncate(mem_fd, 0) != 0)
        return false;
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(mem_fd, data + done, size - done, (off_t)done);
        if (n <= 0)
            return false;
        done += (size_t)n;
    }
    return true;
}

/* ---- resumming ----------------------------------------------------------------------- */

static void resum_ref(uint8_t *b, size_t size, size_t pos)
{
    uint64_t off = load_u64le(b + pos);
    uint32_t len = load_u32le(b + pos + 8);
    if (off <= size && len <= size - off)
        store_u64le(b + pos + 18, XXH3_64bits(b + off, len));
}

/* Repairs magic/version fields and recomputes every checksum reachable by a lenient walk
 * of the footer. The walk follows segment_format.h and stops where the bytes run out. */
static void resum(uint8_t *b, size_t size)
{
    if (size < SEGMENT_HEADER_SIZE + SEGMENT_TRAILER_SIZE)
        return;
    memcpy(b, SEGMENT_MAGIC, 8);
    uint32_t version = load_u32le(b + 8) == SEGMENT_VERSION_BYTES ? SEGMENT_VERSION_BYTES : SEGMENT_VERSION;
    store_u32le(b + 8, version);
    uint8_t *tr = b + size - SEGMENT_TRAILER_SIZE;
    store_u32le(tr + 24, version);
    memcpy(tr + 28, SEGMENT_TRAILER_MAGIC, 4);
    uint64_t foff = load_u64le(tr), flen = load_u64le(tr + 8);
    if (foff > size - SEGMENT_TRAILER_SIZE || flen > size - SEGMENT_TRAILER_SIZE - foff)
        return;
    size_t p = (size_t)foff, end = (size_t)(foff + flen);
#define NEED(n)                                                                                    \
    do {                                                                                           \
        if (end - p < (size_t)(n))                                                                 \
            goto done;                                                                             \
    } while (0)
    NEED(8 + 4 + 4 + 16 + 6);
    uint32_t ngranules = load_u32le(b + p + 12);
    p += 8 + 4 + 4 + 16;
    unsigned ncols = (unsigned)(b[p] | b[p + 1] << 8);
    unsigned norder = (unsigned)(b[p + 4] | b[p + 5] << 8);
    p += 6;
    NEED(2 * (size_t)norder);
    p += 2 * (size_t)norder;
    uint8_t types[STRATA_MAX_COLUMNS];
    if (ncols > STRATA_MAX_COLUMNS)
        goto done;
    for (unsigned c = 0; c < ncols; c++) {
        NEED(2);
        types[c] = b[p];
        size_t nl = b[p + 1];
        p += 2;
        NEED(nl);
        p += nl;
    }
    for (unsigned c = 0; c < ncols; c++) {
        NEED(1);
        uint8_t flags = b[p++];
        if ((flags & SEGMENT_COL_HAS_DICT) || types[c] == STRATA_STRING) {
            for (int k = 0; k < 2; k++) {
                NEED(SEGMENT_BLOCK_REF_SIZE);
                resum_ref(b, size, p);
                p += SEGMENT_BLOCK_REF_SIZE;
            }
        }
        for (uint32_t g = 0; g < ngranules; g++) {
            NEED(SEGMENT_BLOCK_REF_SIZE + 17);
            resum_ref(b, size, p);
            p += SEGMENT_BLOCK_REF_SIZE + 17;
        }
    }
done:
#undef NEED
    store_u64le(tr + 16, XXH3_64bits(b + foff, flen));
}

/* ---- predicates ---------------------------------------------------------------------- */

typedef struct column_data {
    strata_type type;
    int64_t *iv; /* int types, all rows */
    double *fv;  /* float64 */
    uint32_t *cv; /* string codes */
} column_data;

static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15u;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static bool row_matches(const segment *s, const column_data *cd, const segment_pred *p, uint64_t row)
{
    const column_data *d = &cd[p->col];
    if (strata_type_is_int(d->type))
        return segment_pred_match_int(d->type, p, d->iv[row]);
    if (d->type == STRATA_FLOAT64)
        return segment_pred_match_float(p, d->fv[row]);
    return segment_pred_match_str(p, segment_dict_value(s, p->col, d->cv[row]));
}

/* A value for column c: from the data when we have it, else from granule bounds, the
 * dictionary or thin air. String values may point into sbuf. */
static segment_value pick_value(const segment *s, const column_data *cd, int c, bool have_rows,
                            uint64_t *seed, char *sbuf)
{
    segment_value v;
    memset(&v, 0, sizeof v);
    uint64_t r = rnd(seed);
    uint64_t n = segment_nrows(s);
    strata_type t = cd[c].type;
    uint32_t ng = segment_ngranules(s);
    if (strata_type_is_int(t)) {
        if (have_rows && n && r % 3)
            v.i = cd[c].iv[(r >> 8) % n] + (int64_t)((r >> 40) % 3) - 1;
        else if (ng && r % 2)
            v.i = (int64_t)segment_granule(s, c, (uint32_t)((r >> 8) % ng))->min;
        else
            v.i = (int64_t)rnd(seed);
    } else if (t == STRATA_FLOAT64) {
        if (have_rows && n && r % 3)
            v.f = cd[c].fv[(r >> 8) % n];
        else if (r % 5 == 0)
            v.f = NAN;
        else
            v.f = (double)(int64_t)(rnd(seed) % 2001) - 1000.0;
    } else {
        uint32_t dn = segment_dict_size(s, c);
        if (dn && r % 3) {
            v.s = segment_dict_value(s, c, (uint32_t)((r >> 8) % dn));
            if (r % 7 == 0 && v.s.len < 30) { /* a near miss */
                memcpy(sbuf, v.s.ptr, v.s.len);
                sbuf[v.s.len] = (char)(r >> 32);
                v.s = (strata_str){sbuf, v.s.len + 1};
            }
        } else {
            sbuf[0] = (char)(r >> 16);
            v.s = (strata_str){sbuf, (uint32_t)((r >> 24) % 2)};
        }
    }
    return v;
}

static void check_predicates(const segment *s, const column_data *cd, bool have_rows,
                             uint64_t seed)
{
    const strata_schema *sc = segment_schema(s);
    uint32_t ng = segment_ngranules(s), gr = segment_granule_rows(s);
    uint8_t *keep = malloc((size_t)ng + 1);
    CHECK(keep != NULL);
    for (int it = 0; it < 12; it++) {
        segment_value vals[2][4];
        char sbuf[2][4][40];
        segment_pred preds[2];
        int np = 1 + (int)(rnd(&seed) % 2);
        for (int k = 0; k < np; k++) {
            uint64_t r = rnd(&seed);
            segment_pred *p = &preds[k];
            p->col = (int)(r % (unsigned)sc->ncols);
            if (cd[p->col].type == STRATA_BYTES)
                p->col = sc->time_col; /* no predicate reads opaque values */
            p->op = (segment_pred_op)((r >> 8) % 8);
            p->nvals = p->op == SEGMENT_PRED_IN || p->op == SEGMENT_PRED_NOT_IN ? (uint32_t)((r >> 16) % 5) : 1;
            for (uint32_t i = 0; i < p->nvals; i++)
                vals[k][i] = pick_value(s, cd, p->col, have_rows, &seed, sbuf[k][i]);
            p->vals = vals[k];
        }
        segment_prune_granules(s, preds, np, keep);
        if (have_rows) {
            for (uint32_t g = 0; g < ng; g++) {
                if (keep[g])
                    continue;
                uint64_t r0 = (uint64_t)g * gr, cnt = segment_granule_nrows(s, g);
                for (uint64_t row = r0; row < r0 + cnt; row++) {
                    bool all = true;
                    for (int k = 0; k < np && all; k++)
                        all = row_matches(s, cd, &preds[k], row);
                    CHECK(!all); /* a pruned granule holds a matching row */
                }
            }
        }
        for (int k = 0; k < np; k++) {
            if (cd[preds[k].col].type != STRATA_STRING)
                continue;
            roaring_bitmap_t *rows = segment_pred_rows(s, &preds[k]);
            CHECK(rows != NULL);
            if (have_rows) {
                uint64_t want = 0;
                for (uint64_t row = 0; row < segment_nrows(s); row++) {
                    bool m = row_matches(s, cd, &preds[k], row);
                    want += m;
                    CHECK(m == roaring_bitmap_contains(rows, (uint32_t)row));
                }
                CHECK(roaring_bitmap_get_cardinality(rows) == want);
            }
            roaring_bitmap_free(rows);
        }
    }
    free(keep);
}

/* ---- one file ------------------------------------------------------------------------ */

static void exercise(const segment *s, uint64_t seed)
{
    strata_err err = {0};
    int vrc = segment_verify(s, &err);
    if (vrc)
        CHECK(strstr(err.msg, mem_path) != NULL);
    const strata_schema *sc = segment_schema(s);
    uint64_t n = segment_nrows(s);
    uint32_t ng = segment_ngranules(s), gr = segment_granule_rows(s);
    CHECK(sc->ncols >= 1 && sc->ncols <= STRATA_MAX_COLUMNS);
    CHECK(gr >= 1 && gr <= SEGMENT_MAX_GRANULE_ROWS);
    CHECK((uint64_t)ng == (n + gr - 1) / gr);
    bool have_rows = vrc == 0 && n <= MAX_CHECKED_ROWS;
    column_data cd[STRATA_MAX_COLUMNS];
    memset(cd, 0, sizeof cd);
    size_t cap = have_rows ? (size_t)n + 1 : gr;
    segment_scratch scr = {0};
    for (int c = 0; c < sc->ncols; c++) {
        strata_type t = sc->cols[c].type;
        cd[c].type = t;
        if (strata_type_is_int(t))
            cd[c].iv = malloc(sizeof *cd[c].iv * cap);
        else if (t == STRATA_FLOAT64)
            cd[c].fv = malloc(sizeof *cd[c].fv * cap);
        else
            cd[c].cv = malloc(sizeof *cd[c].cv * cap); /* codes, or a bytes column's ends */
        CHECK(cd[c].iv || cd[c].fv || cd[c].cv);
        for (uint32_t g = 0; g < ng; g++) {
            size_t at = have_rows ? (size_t)g * gr : 0;
            int rc;
            if (strata_type_is_int(t))
                rc = segment_read_ints(s, c, g, cd[c].iv + at, &scr, &err);
            else if (t == STRATA_FLOAT64)
                rc = segment_read_floats(s, c, g, cd[c].fv + at, &scr, &err);
            else if (t == STRATA_BYTES) {
                const uint8_t *bytes;
                rc = segment_read_bytes(s, c, g, cd[c].cv + at, &bytes, &scr, &err);
                for (uint32_t i = 0; rc == 0 && i < segment_granule_nrows(s, g); i++)
                    CHECK(cd[c].cv[at + i] >= (i ? cd[c].cv[at + i - 1] : 0)); /* ends ascend */
            } else
                rc = segment_read_codes(s, c, g, cd[c].cv + at, &scr, &err);
            if (vrc == 0)
                CHECK(rc == 0); /* verify passed, so every block reads */
            if (rc)
                CHECK(strstr(err.msg, mem_path) != NULL);
        }
        if (t == STRATA_STRING) {
            uint32_t dn = segment_dict_size(s, c);
            uint64_t total = 0;
            for (uint32_t k = 0; k < dn; k++) {
                strata_str v = segment_dict_value(s, c, k);
                CHECK(segment_dict_find(s, c, v.ptr, v.len) == (int64_t)k);
                CHECK(segment_dict_lower_bound(s, c, v.ptr, v.len) == k);
                const roaring_bitmap_t *bm = segment_dict_bitmap(s, c, k);
                CHECK(bm != NULL);
                total += roaring_bitmap_get_cardinality(bm);
            }
            CHECK(total == n); /* checked at open */
            (void)segment_dict_bytes(s, c);
            (void)segment_bitmap_bytes(s, c);
        }
    }
    segment_scratch_free(&scr);
    check_predicates(s, cd, have_rows, seed);
    for (int c = 0; c < sc->ncols; c++) {
        free(cd[c].iv);
        free(cd[c].fv);
        free(cd[c].cv);
    }
}

static void run_one(const uint8_t *data, size_t size)
{
    if (!put_input(data, size))
        return;
    segment *s = NULL;
    strata_err err = {0};
    int rc = segment_open(mem_path, &s, &err);
    if (rc) {
        CHECK(s == NULL);
        CHECK(strstr(err.msg, mem_path) != NULL);
        return;
    }
    exercise(s, XXH3_64bits(data, size));
    segment_close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run_one(data, size);
    if (size >= SEGMENT_HEADER_SIZE + SEGMENT_TRAILER_SIZE) {
        uint8_t *copy = malloc(size);
        if (!copy)
            return 0;
        memcpy(copy, data, size);
        resum(copy, size);
        if (memcmp(copy, data, size) != 0)
            run_one(copy, size);
        free(copy);
    }
    return 0;
}
