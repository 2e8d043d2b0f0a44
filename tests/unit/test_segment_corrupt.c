/*
 * test_segment_corrupt.c — damaged segment files must be refused cleanly, with an error
 * that names the file (and, for a damaged block, its column and granule).
 *
 * Three parts:
 *  - corpus_replay: every file under tests/corpus/segment (found relative to __FILE__) is
 *    opened, verified and read block by block; valid_* files must pass, every other file
 *    must fail with a message naming it, and the files listed in `expectations` must fail
 *    with the listed code and message fragments.
 *  - exhaustive_*: a small valid segment (three codecs) is kept in a memfd and opened
 *    through /proc/self/fd/N after cutting it at every offset and after flipping every bit
 *    (one pwrite to damage, one to repair); each must fail, and the message must point at
 *    the region the damage is in (header, the block's column and granule, dictionary,
 *    bitmap index, footer, trailer).
 *  - corpus_generate: rebuilds the corpus when STRATA_GEN_SEGMENT_CORPUS names a directory
 *    (run once by hand; the files are committed). Otherwise it does nothing.
 * The footer walker below (map_segment) follows segment_format.h to find every block
 * reference, so damage can be aimed and checksums recomputed for the "_resummed" files,
 * whose damage only the semantic checks can see.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/buf.h"
#include "engine/encode.h"
#include "engine/segment.h"
#include "engine/segment_format.h"
#include "test.h"

enum { C_TS, C_V, C_F, C_S, NCOLS };
static const char *const col_names[NCOLS] = {"ts", "v", "f", "s"};
#define SMALL_ROWS 200
#define SMALL_GRANULE 32

/* ---- files --------------------------------------------------------------------------- */

static char tmp_dir[1024];

static void tmp_cleanup(void)
{
    test_rmdir_flat(tmp_dir);
}

static void tmp_path(char *out, size_t cap, const char *name)
{
    if (!tmp_dir[0]) {
        const char *base = getenv("STRATA_TEST_TMP");
        snprintf(tmp_dir, sizeof tmp_dir, "%s/test_segment_corrupt.XXXXXX",
                 base && *base ? base : "/tmp");
        if (!mkdtemp(tmp_dir)) {
            fprintf(stderr, "mkdtemp %s: %s\n", tmp_dir, strerror(errno));
            abort();
        }
        atexit(tmp_cleanup);
    }
    snprintf(out, cap, "%s/%s", tmp_dir, name);
}

static uint8_t *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    bytebuf b = {0};
    uint8_t tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        buf_put(&b, tmp, n);
    fclose(f);
    *len = b.len;
    if (!b.data)
        return calloc(1, 1);
    return b.data;
}

static bool write_whole(const char *path, const uint8_t *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(p, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static void corpus_dir(char *out, size_t cap)
{
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    if (slash)
        snprintf(out, cap, "%.*s/../corpus/segment", (int)(slash - file), file);
    else
        snprintf(out, cap, "../corpus/segment");
}

/* ---- the small valid segment --------------------------------------------------------- */

/* Writes a segment of nrows rows (ts strictly increasing, v random, f two-decimal prices
 * with a NaN every 50 rows, s one of ten words) to path. */
static int write_small(const char *path, strata_codec codec, uint32_t nrows, strata_err *err)
{
    static const char *words[] = {"apple", "banana", "cherry", "date", "elder",
                                  "fig",   "grape",  "honeydew", "kiwi", "lemon"};
    strata_schema sc;
    schema_init(&sc);
    snprintf(sc.name, sizeof sc.name, "small");
    sc.ncols = NCOLS;
    strata_type types[NCOLS] = {STRATA_TIMESTAMP, STRATA_INT64, STRATA_FLOAT64, STRATA_STRING};
    for (int c = 0; c < NCOLS; c++) {
        snprintf(sc.cols[c].name, sizeof sc.cols[c].name, "%s", col_names[c]);
        sc.cols[c].type = types[c];
    }
    sc.time_col = C_TS;
    sc.norder = 1;
    sc.order_by[0] = C_TS;
    segment_write_opts opts = {.codec = codec, .granule_rows = SMALL_GRANULE};
    segment_writer *w = segment_writer_open(path, &sc, &opts, err);
    if (!w)
        return err->code;
    int rc = 0;
    if (nrows > 0) {
        strata_str dict[10];
        for (int i = 0; i < 10; i++)
            dict[i] = (strata_str){words[i], (uint32_t)strlen(words[i])};
        rc = segment_writer_set_dict(w, C_S, dict, 10, err);
    }
    uint64_t seed = 0x5eed;
    int64_t t = INT64_C(1700000000000);
    for (uint32_t row0 = 0; row0 < nrows && rc == 0; row0 += SMALL_GRANULE) {
        uint32_t n = nrows - row0 < SMALL_GRANULE ? nrows - row0 : SMALL_GRANULE;
        int64_t ts[SMALL_GRANULE], v[SMALL_GRANULE];
        double f[SMALL_GRANULE];
        uint32_t s[SMALL_GRANULE];
        for (uint32_t i = 0; i < n; i++) {
            uint64_t r = test_rand_next(&seed);
            t += 1000 + (int64_t)(r % 500);
            ts[i] = t;
            v[i] = (int64_t)(r >> 20) % 30000;
            f[i] = (row0 + i) % 50 == 7 ? NAN : (double)(int64_t)((r >> 40) % 100000) / 100.0;
            s[i] = (uint32_t)((r >> 8) % 10);
        }
        const void *cols[NCOLS] = {ts, v, f, s};
        rc = segment_writer_add_granule(w, n, cols, err);
    }
    if (rc) {
        segment_writer_abort(w);
        return rc;
    }
    return segment_writer_finish(w, NULL, err);
}

static uint8_t *make_small(strata_codec codec, uint32_t nrows, size_t *len)
{
    char path[1200];
    tmp_path(path, sizeof path, "small.seg");
    unlink(path);
    strata_err err = {0};
    if (write_small(path, codec, nrows, &err) != 0) {
        fprintf(stderr, "write_small: %s\n", err.msg);
        abort();
    }
    uint8_t *b = read_whole(path, len);
    unlink(path);
    return b;
}

/* ---- footer walker ------------------------------------------------------------------- */

enum { BLK_DATA, BLK_DICT, BLK_BITMAP };

typedef struct ref_loc {
    size_t pos; /* of the BLOCK_REF in the file */
    int col, kind;
    uint32_t g;
    uint64_t off;
    uint32_t len;
} ref_loc;

typedef struct seg_map {
    size_t size;
    uint64_t footer_off, footer_len;
    uint32_t ngranules;
    int ncols;
    size_t time_col_pos, type_pos[NCOLS], name_pos[NCOLS];
    size_t gran_min_pos[NCOLS][16]; /* the min field of each granule entry */
    ref_loc refs[NCOLS * 18];
    int nrefs;
} seg_map;

/* Walks a well-formed segment of the small shape; false if it does not look like one. */
static bool map_segment(const uint8_t *b, size_t size, seg_map *m)
{
    memset(m, 0, sizeof *m);
    m->size = size;
    if (size < SEGMENT_HEADER_SIZE + SEGMENT_TRAILER_SIZE)
        return false;
    const uint8_t *tr = b + size - SEGMENT_TRAILER_SIZE;
    m->footer_off = load_u64le(tr);
    m->footer_len = load_u64le(tr + 8);
    if (m->footer_off + m->footer_len != size - SEGMENT_TRAILER_SIZE)
        return false;
    size_t p = (size_t)m->footer_off;
    p += 8;                          /* nrows */
    p += 4;                          /* granule_rows */
    m->ngranules = load_u32le(b + p);
    p += 4 + 16;                     /* ngranules, min/max time */
    m->ncols = b[p] | b[p + 1] << 8;
    m->time_col_pos = p + 2;
    int norder = b[p + 4] | b[p + 5] << 8;
    p += 6 + 2 * (size_t)norder;
    if (m->ncols != NCOLS || m->ngranules > 16)
        return false;
    for (int c = 0; c < NCOLS; c++) {
        m->type_pos[c] = p;
        m->name_pos[c] = p + 2;
        p += 2 + b[p + 1];
    }
    for (int c = 0; c < NCOLS; c++) {
        uint8_t flags = b[p++];
        int nextra = flags & SEGMENT_COL_HAS_DICT ? 2 : 0;
        for (int k = 0; k < nextra; k++) {
            ref_loc *r = &m->refs[m->nrefs++];
            *r = (ref_loc){p, c, k == 0 ? BLK_DICT : BLK_BITMAP, 0, load_u64le(b + p),
                           load_u32le(b + p + 8)};
            p += SEGMENT_BLOCK_REF_SIZE;
        }
        for (uint32_t g = 0; g < m->ngranules; g++) {
            ref_loc *r = &m->refs[m->nrefs++];
            *r = (ref_loc){p, c, BLK_DATA, g, load_u64le(b + p), load_u32le(b + p + 8)};
            m->gran_min_pos[c][g] = p + SEGMENT_BLOCK_REF_SIZE;
            p += SEGMENT_BLOCK_REF_SIZE + 17;
        }
    }
    return p == size - SEGMENT_TRAILER_SIZE;
}

static const ref_loc *find_ref(const seg_map *m, int col, int kind, uint32_t g)
{
    for (int i = 0; i < m->nrefs; i++)
        if (m->refs[i].col == col && m->refs[i].kind == kind && m->refs[i].g == g)
            return &m->refs[i];
    abort();
}

static void resum_block(uint8_t *b, const ref_loc *r)
{
    uint64_t off = load_u64le(b + r->pos);
    uint32_t len = load_u32le(b + r->pos + 8);
    store_u64le(b + r->pos + 18, XXH3_64bits(b + off, len));
}

static void resum_footer(uint8_t *b, const seg_map *m)
{
    store_u64le(b + m->size - SEGMENT_TRAILER_SIZE + 16,
                XXH3_64bits(b + m->footer_off, m->footer_len));
}

/* What an error about damage at file offset x must mention. */
static void region_of(const seg_map *m, size_t x, char *out, size_t cap)
{
    if (x < SEGMENT_HEADER_SIZE) {
        snprintf(out, cap, "header");
        return;
    }
    if (x >= m->size - SEGMENT_TRAILER_SIZE) {
        snprintf(out, cap, "<trailer>"); /* "trailer" or "footer" (its checksum) */
        return;
    }
    if (x >= m->footer_off) {
        snprintf(out, cap, "footer");
        return;
    }
    for (int i = 0; i < m->nrefs; i++) {
        const ref_loc *r = &m->refs[i];
        if (x >= r->off && x < r->off + r->len) {
            if (r->kind == BLK_DATA)
                snprintf(out, cap, "column '%s' granule %u:", col_names[r->col], r->g);
            else
                snprintf(out, cap, "column '%s' %s:", col_names[r->col],
                         r->kind == BLK_DICT ? "dictionary" : "bitmap index");
            return;
        }
    }
    snprintf(out, cap, "<unreferenced>");
}

/* ---- replay -------------------------------------------------------------------------- */

/* Opens path, verifies it, reads every block and touches the dictionary and pruning
 * entry points; returns the first error (0 if the file is sound). */
static int replay_one(const char *path, strata_err *err)
{
    segment *s = NULL;
    int rc = segment_open(path, &s, err);
    if (rc)
        return rc;
    rc = segment_verify(s, err);
    const strata_schema *sc = segment_schema(s);
    uint32_t gr = segment_granule_rows(s);
    int64_t *iv = malloc(sizeof *iv * gr);
    double *fv = malloc(sizeof *fv * gr);
    uint32_t *cv = malloc(sizeof *cv * gr);
    segment_scratch scr = {0};
    for (int c = 0; c < sc->ncols && rc == 0; c++) {
        strata_type t = sc->cols[c].type;
        for (uint32_t g = 0; g < segment_ngranules(s) && rc == 0; g++) {
            if (strata_type_is_int(t))
                rc = segment_read_ints(s, c, g, iv, &scr, err);
            else if (t == STRATA_FLOAT64)
                rc = segment_read_floats(s, c, g, fv, &scr, err);
            else if (t == STRATA_BYTES) {
                const uint8_t *bytes;
                rc = segment_read_bytes(s, c, g, cv, &bytes, &scr, err);
            } else
                rc = segment_read_codes(s, c, g, cv, &scr, err);
        }
        if (rc == 0 && t == STRATA_STRING && segment_dict_size(s, c) > 0) {
            strata_str v = segment_dict_value(s, c, 0);
            segment_value val = {.s = v};
            segment_pred p = {c, SEGMENT_PRED_EQ, 1, &val};
            uint8_t *keep = malloc(segment_ngranules(s) + 1);
            segment_prune_granules(s, &p, 1, keep);
            free(keep);
            roaring_bitmap_t *rows = segment_pred_rows(s, &p);
            roaring_bitmap_free(rows);
        }
    }
    segment_scratch_free(&scr);
    free(iv);
    free(fv);
    free(cv);
    segment_close(s);
    return rc;
}

/* ---- the corpus ---------------------------------------------------------------------- */

typedef struct expectation {
    const char *file;
    int code;          /* 0: any error */
    const char *msg1, *msg2;
} expectation;

static const expectation expectations[] = {
    {"empty_file.seg", STRATA_ECORRUPT, "too short", NULL},
    {"truncated_in_header.seg", STRATA_ECORRUPT, "too short", NULL},
    {"truncated_after_header.seg", STRATA_ECORRUPT, "too short", NULL},
    {"truncated_in_first_block.seg", STRATA_ECORRUPT, NULL, NULL},
    {"truncated_in_data_block.seg", STRATA_ECORRUPT, NULL, NULL},
    {"truncated_in_dictionary_block.seg", STRATA_ECORRUPT, NULL, NULL},
    {"truncated_in_bitmap_block.seg", STRATA_ECORRUPT, NULL, NULL},
    {"truncated_at_footer_start.seg", STRATA_ECORRUPT, NULL, NULL},
    {"truncated_in_footer.seg", STRATA_ECORRUPT, NULL, NULL},
    {"truncated_before_trailer.seg", STRATA_ECORRUPT, NULL, NULL},
    {"truncated_in_trailer.seg", STRATA_ECORRUPT, "trailer", NULL},
    {"truncated_last_byte.seg", STRATA_ECORRUPT, "trailer", NULL},
    {"flipped_bit_magic.seg", STRATA_ECORRUPT, "header", "magic"},
    {"flipped_bit_header_flags.seg", STRATA_ECORRUPT, "header", "flags"},
    {"version_0.seg", STRATA_EVERSION, "version 0", NULL},
    {"version_3.seg", STRATA_ECORRUPT, "trailer", "version 1 differs"},
    {"version_3_in_trailer.seg", STRATA_ECORRUPT, "trailer", "version 3"},
    {"version_4.seg", STRATA_EVERSION, "version 4", NULL},
    {"version_4_both.seg", STRATA_EVERSION, "version 4", NULL},
    {"flipped_bit_time_block.seg", STRATA_ECORRUPT, "column 'ts' granule 0:", "checksum"},
    {"flipped_bit_data_block.seg", STRATA_ECORRUPT, "column 'v' granule 2:", "checksum"},
    {"flipped_bit_float_block.seg", STRATA_ECORRUPT, "column 'f' granule 6:", "checksum"},
    {"flipped_bit_codes_block.seg", STRATA_ECORRUPT, "column 's' granule 3:", "checksum"},
    {"flipped_bit_dictionary_block.seg", STRATA_ECORRUPT, "column 's' dictionary:", "checksum"},
    {"flipped_bit_bitmap_block.seg", STRATA_ECORRUPT, "column 's' bitmap index:", "checksum"},
    {"zeroed_data_block.seg", STRATA_ECORRUPT, "column 'v' granule 1:", "checksum"},
    {"swapped_block_bytes.seg", STRATA_ECORRUPT, "column 'ts' granule 1:", "checksum"},
    {"flipped_bit_footer_nrows.seg", STRATA_ECORRUPT, "footer", "checksum"},
    {"flipped_bit_footer_column_name.seg", STRATA_ECORRUPT, "footer", "checksum"},
    {"flipped_bit_footer_block_ref.seg", STRATA_ECORRUPT, "footer", "checksum"},
    {"flipped_bit_footer_granule_min.seg", STRATA_ECORRUPT, "footer", "checksum"},
    {"flipped_bit_footer_last_byte.seg", STRATA_ECORRUPT, "footer", "checksum"},
    {"flipped_bit_trailer_footer_offset.seg", STRATA_ECORRUPT, "trailer", NULL},
    {"flipped_bit_trailer_footer_len.seg", STRATA_ECORRUPT, "trailer", NULL},
    {"flipped_bit_trailer_checksum.seg", STRATA_ECORRUPT, "footer", "checksum"},
    {"flipped_bit_trailer_magic.seg", STRATA_ECORRUPT, "trailer", "magic"},
    {"footer_offset_outside.seg", STRATA_ECORRUPT, "trailer", NULL},
    {"footer_offset_wraps.seg", STRATA_ECORRUPT, "trailer", NULL},
    {"footer_len_huge.seg", STRATA_ECORRUPT, "trailer", NULL},
    {"trailing_garbage.seg", STRATA_ECORRUPT, "trailer", NULL},
    {"leading_garbage.seg", STRATA_ECORRUPT, "header", NULL},
    {"garbage.seg", STRATA_ECORRUPT, NULL, NULL},
    {"garbage_with_magics.seg", STRATA_ECORRUPT, NULL, NULL},
    {"text_file.seg", STRATA_ECORRUPT, "not a strata segment", NULL},
    {"json_file.seg", STRATA_ECORRUPT, "not a strata segment", NULL},
    {"footer_rows_mismatch_resummed.seg", STRATA_ECORRUPT, "footer", "do not agree"},
    {"footer_bad_column_type_resummed.seg", STRATA_ECORRUPT, "footer", "type 99"},
    {"footer_time_column_not_timestamp_resummed.seg", STRATA_ECORRUPT, "footer",
     "not a timestamp"},
    {"block_ref_out_of_bounds_resummed.seg", STRATA_ECORRUPT, "column 'f' granule 4:",
     "out of bounds"},
    {"granule_min_wrong_resummed.seg", STRATA_ECORRUPT, "column 'v' granule 1:", "min/max"},
    {"time_range_wrong_resummed.seg", STRATA_ECORRUPT, "footer time range", "differs from the data"},
    {"encoding_mismatch_resummed.seg", STRATA_ECORRUPT, "column 'v' granule 0:", "differs"},
    {"bad_width_resummed.seg", STRATA_ECORRUPT, "column 'v' granule 1:", "malformed"},
    {"code_outside_dictionary_resummed.seg", STRATA_ECORRUPT, "column 's' granule 0:",
     "outside the dictionary"},
    {"dictionary_unsorted_resummed.seg", STRATA_ECORRUPT, "column 's' dictionary:",
     "out of order"},
    {"bitmap_count_wrong_resummed.seg", STRATA_ECORRUPT, "column 's' bitmap index:", NULL},
    {"bitmap_raw_len_huge_resummed.seg", STRATA_ECORRUPT, "column 's' bitmap index:", "claims"},
};
#define NEXPECT (sizeof expectations / sizeof expectations[0])

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

TEST(corpus_replay)
{
    char dir[1024];
    corpus_dir(dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d)
        TEST_FAIL_("corpus directory %s: %s", dir, strerror(errno));
    char *names[512];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 512)
        if (e->d_name[0] != '.' && strstr(e->d_name, ".seg"))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, name_cmp);
    int valid = 0, damaged = 0;
    bool seen[NEXPECT] = {0};
    for (int i = 0; i < n; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        strata_err err = {0};
        int rc = replay_one(path, &err);
        if (strncmp(names[i], "valid_", 6) == 0) {
            if (rc)
                TEST_FAIL_("%s should be sound: %s", names[i], err.msg);
            valid++;
            continue;
        }
        damaged++;
        if (rc == 0)
            TEST_FAIL_("%s passed open, verify and every read", names[i]);
        if (!strstr(err.msg, path))
            TEST_FAIL_("%s: message does not name the file: %s", names[i], err.msg);
        for (size_t k = 0; k < NEXPECT; k++) {
            const expectation *x = &expectations[k];
            if (strcmp(x->file, names[i]) != 0)
                continue;
            seen[k] = true;
            if (x->code && rc != x->code)
                TEST_FAIL_("%s: code %d (%s), want %d: %s", names[i], rc, strata_strerror(rc),
                           x->code, err.msg);
            if (x->msg1 && !strstr(err.msg, x->msg1))
                TEST_FAIL_("%s: message lacks \"%s\": %s", names[i], x->msg1, err.msg);
            if (x->msg2 && !strstr(err.msg, x->msg2))
                TEST_FAIL_("%s: message lacks \"%s\": %s", names[i], x->msg2, err.msg);
        }
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    for (size_t k = 0; k < NEXPECT; k++)
        if (!seen[k])
            TEST_FAIL_("corpus file %s is missing from %s", expectations[k].file, dir);
    ASSERT_GE(valid, 3);
    ASSERT_GE(damaged, 40);
}

/* ---- exhaustive damage in memory ----------------------------------------------------- */

typedef struct memseg {
    int fd;
    char path[64];
    const uint8_t *bytes;
    size_t len;
} memseg;

static void memseg_open(memseg *m, const uint8_t *bytes, size_t len)
{
    m->fd = memfd_create("segment", MFD_CLOEXEC);
    if (m->fd < 0) {
        fprintf(stderr, "memfd_create: %s\n", strerror(errno));
        abort();
    }
    snprintf(m->path, sizeof m->path, "/proc/self/fd/%d", m->fd);
    m->bytes = bytes;
    m->len = len;
    if (pwrite(m->fd, bytes, len, 0) != (ssize_t)len)
        abort();
}

/* Checks one damaged state: must fail, naming the file and (when known) the region. */
static void expect_refused(const memseg *m, const char *what, size_t at, const char *region)
{
    strata_err err = {0};
    int rc = replay_one(m->path, &err);
    if (rc == 0)
        TEST_FAIL_("%s at %zu (%s) went unnoticed", what, at, region);
    if (!strstr(err.msg, m->path))
        TEST_FAIL_("%s at %zu: message does not name the file: %s", what, at, err.msg);
    if (strcmp(region, "<trailer>") == 0) {
        if (!strstr(err.msg, "trailer") && !strstr(err.msg, "footer"))
            TEST_FAIL_("%s at %zu in the trailer: message is %s", what, at, err.msg);
    } else if (region[0] != '<' && !strstr(err.msg, region)) {
        TEST_FAIL_("%s at %zu should blame \"%s\": %s", what, at, region, err.msg);
    }
}

static void exhaustive(strata_codec codec)
{
    size_t len;
    uint8_t *b = make_small(codec, 100, &len);
    seg_map map;
    ASSERT(map_segment(b, len, &map));
    memseg m;
    memseg_open(&m, b, len);
    strata_err err = {0};
    ASSERT_EQ(replay_one(m.path, &err), 0);

    /* every byte belongs to the header, a referenced block, the footer or the trailer */
    for (size_t x = 0; x < len; x++) {
        char region[96];
        region_of(&map, x, region, sizeof region);
        if (strcmp(region, "<unreferenced>") == 0)
            TEST_FAIL_("byte %zu of a fresh segment is in no block", x);
    }

    /* every truncation: the trailer moves, so the message is about header or trailer */
    for (size_t cut = 0; cut < len; cut++) {
        ASSERT_EQ(ftruncate(m.fd, (off_t)cut), 0);
        expect_refused(&m, "cut", cut, "<any>");
        ASSERT_EQ(pwrite(m.fd, b + cut, len - cut, (off_t)cut), (ssize_t)(len - cut));
    }

    /* every bit */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t x = 0; x < len; x++) {
        char region[96];
        region_of(&map, x, region, sizeof region);
        for (int bit = 0; bit < 8; bit++) {
            uint8_t v = (uint8_t)(b[x] ^ (1u << bit));
            ASSERT_EQ(pwrite(m.fd, &v, 1, (off_t)x), 1);
            expect_refused(&m, "bit flip", x * 8 + (size_t)bit, region);
            ASSERT_EQ(pwrite(m.fd, b + x, 1, (off_t)x), 1);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "     %s: %zu bytes, %zu truncations and %zu bit flips refused (%.1f s)\n",
            compress_codec_name(codec), len, len, len * 8,
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);

    /* repaired: sound again */
    ASSERT_EQ(replay_one(m.path, &err), 0);
    close(m.fd);
    free(b);
}

TEST(exhaustive_lz4) { exhaustive(STRATA_CODEC_LZ4); }
TEST(exhaustive_zstd) { exhaustive(STRATA_CODEC_ZSTD); }
TEST(exhaustive_none) { exhaustive(STRATA_CODEC_NONE); }

/* Regression: a trailer whose footer offset is so large that offset + length wraps around
 * 2^64 to the right sum was reported as an I/O error (pread at a negative offset) instead
 * of a corrupt trailer. */
TEST(trailer_footer_offset_wraps_is_corrupt)
{
    size_t len;
    uint8_t *b = make_small(STRATA_CODEC_LZ4, 50, &len);
    uint8_t *tr = b + len - SEGMENT_TRAILER_SIZE;
    for (uint64_t flen = len - 31; flen <= len + 40; flen++) {
        store_u64le(tr, (uint64_t)(len - SEGMENT_TRAILER_SIZE) - flen); /* wraps */
        store_u64le(tr + 8, flen);
        memseg m;
        memseg_open(&m, b, len);
        strata_err err = {0};
        segment *s = NULL;
        int rc = segment_open(m.path, &s, &err);
        close(m.fd);
        if (rc != STRATA_ECORRUPT)
            TEST_FAIL_("footer length %" PRIu64 ": code %d: %s", flen, rc, err.msg);
        ASSERT_CONTAINS(err.msg, "trailer");
    }
    free(b);
}

/* Regression: a dictionary or bitmap block reference claiming a raw length near 4 GiB made
 * open allocate that much before finding out the block cannot decompress to it (found by
 * fuzz_segment as a 4 GiB malloc). The claim is now checked against what the codec can
 * produce from the stored bytes first. */
TEST(index_block_raw_len_beyond_codec_is_corrupt)
{
    int tried = 0;
    const strata_codec codecs[] = {STRATA_CODEC_LZ4, STRATA_CODEC_ZSTD};
    for (int ci = 0; ci < 2; ci++) {
        size_t len;
        uint8_t *b = make_small(codecs[ci], SMALL_ROWS, &len);
        seg_map map;
        ASSERT(map_segment(b, len, &map));
        for (int i = 0; i < map.nrefs; i++) {
            const ref_loc *r = &map.refs[i];
            if (r->kind == BLK_DATA || b[r->pos + 16] == STRATA_CODEC_NONE)
                continue;
            uint8_t *q = malloc(len);
            memcpy(q, b, len);
            store_u32le(q + r->pos + 12, UINT32_C(0xF0000000));
            resum_footer(q, &map);
            memseg m;
            memseg_open(&m, q, len);
            strata_err err = {0};
            int rc = replay_one(m.path, &err);
            close(m.fd);
            free(q);
            if (rc != STRATA_ECORRUPT || !strstr(err.msg, "claims"))
                TEST_FAIL_("%s %s block claiming 0xF0000000 raw bytes: code %d: %s",
                           compress_codec_name(codecs[ci]), r->kind == BLK_DICT ? "dictionary" : "bitmap",
                           rc, err.msg);
            tried++;
        }
        free(b);
    }
    ASSERT_GE(tried, 1);
}

/* ---- corpus generation --------------------------------------------------------------- */

typedef struct gen_ctx {
    char dir[1024];
    uint8_t *lz4, *none, *zstd;
    size_t lz4_len, none_len, zstd_len;
    seg_map lz4_map, none_map;
    int written;
} gen_ctx;

static void emit(gen_ctx *g, const char *name, const uint8_t *p, size_t len)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", g->dir, name);
    if (!write_whole(path, p, len)) {
        fprintf(stderr, "write %s: %s\n", path, strerror(errno));
        abort();
    }
    g->written++;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t len)
{
    uint8_t *q = malloc(len + 256);
    memcpy(q, p, len);
    return q;
}

static void emit_truncated(gen_ctx *g, const char *name, size_t cut)
{
    emit(g, name, g->lz4, cut);
}

static void emit_flipped(gen_ctx *g, const char *name, size_t at, int bit)
{
    uint8_t *q = dup_bytes(g->lz4, g->lz4_len);
    q[at] ^= (uint8_t)(1u << bit);
    emit(g, name, q, g->lz4_len);
    free(q);
}

static size_t mid_of(const ref_loc *r)
{
    return (size_t)r->off + r->len / 2;
}

TEST(corpus_generate)
{
    const char *out = getenv("STRATA_GEN_SEGMENT_CORPUS");
    if (!out || !*out) {
        fprintf(stderr, "     (set STRATA_GEN_SEGMENT_CORPUS=dir to rebuild the corpus)\n");
        return;
    }
    gen_ctx g = {0};
    snprintf(g.dir, sizeof g.dir, "%s", out);
    g.lz4 = make_small(STRATA_CODEC_LZ4, SMALL_ROWS, &g.lz4_len);
    g.none = make_small(STRATA_CODEC_NONE, SMALL_ROWS, &g.none_len);
    g.zstd = make_small(STRATA_CODEC_ZSTD, SMALL_ROWS, &g.zstd_len);
    ASSERT(map_segment(g.lz4, g.lz4_len, &g.lz4_map));
    ASSERT(map_segment(g.none, g.none_len, &g.none_map));
    const seg_map *m = &g.lz4_map;
    size_t len = g.lz4_len;

    /* sound files */
    emit(&g, "valid_small.seg", g.lz4, g.lz4_len);
    emit(&g, "valid_small_none.seg", g.none, g.none_len);
    emit(&g, "valid_small_zstd.seg", g.zstd, g.zstd_len);
    size_t elen;
    uint8_t *empty = make_small(STRATA_CODEC_LZ4, 0, &elen);
    emit(&g, "valid_empty.seg", empty, elen);
    free(empty);
    uint8_t *one = make_small(STRATA_CODEC_ZSTD, 1, &elen);
    emit(&g, "valid_one_row.seg", one, elen);
    free(one);

    /* truncations */
    emit_truncated(&g, "empty_file.seg", 0);
    emit_truncated(&g, "truncated_in_header.seg", 10);
    emit_truncated(&g, "truncated_after_header.seg", SEGMENT_HEADER_SIZE);
    emit_truncated(&g, "truncated_in_first_block.seg", mid_of(find_ref(m, C_TS, BLK_DATA, 0)));
    emit_truncated(&g, "truncated_in_data_block.seg", mid_of(find_ref(m, C_V, BLK_DATA, 3)));
    emit_truncated(&g, "truncated_in_dictionary_block.seg", mid_of(find_ref(m, C_S, BLK_DICT, 0)));
    emit_truncated(&g, "truncated_in_bitmap_block.seg", mid_of(find_ref(m, C_S, BLK_BITMAP, 0)));
    emit_truncated(&g, "truncated_at_footer_start.seg", (size_t)m->footer_off);
    emit_truncated(&g, "truncated_in_footer.seg", (size_t)(m->footer_off + m->footer_len / 2));
    emit_truncated(&g, "truncated_before_trailer.seg", len - SEGMENT_TRAILER_SIZE);
    emit_truncated(&g, "truncated_in_trailer.seg", len - 16);
    emit_truncated(&g, "truncated_last_byte.seg", len - 1);

    /* header and versions */
    emit_flipped(&g, "flipped_bit_magic.seg", 3, 2);
    emit_flipped(&g, "flipped_bit_header_flags.seg", 12, 0);
    uint8_t *q = dup_bytes(g.lz4, len);
    store_u32le(q + 8, 0);
    emit(&g, "version_0.seg", q, len);
    /* Version 3 is for rollup tier segments (a file without a bytes column may be one),
     * and 4 the first version this build refuses (SEGMENT_VERSION_MAX + 1). The committed valid_* files
     * were written as version 1, before the bucketed row order (version 2): their replay
     * checks old files are still read; a regenerated corpus writes version 2. */
    store_u32le(q + 8, 3);
    emit(&g, "version_3.seg", q, len);
    store_u32le(q + len - 8, 3);
    emit(&g, "valid_version_3_no_bytes.seg", q, len);
    store_u32le(q + 8, 4);
    store_u32le(q + len - 8, 1);
    emit(&g, "version_4.seg", q, len);
    store_u32le(q + len - 8, 4);
    emit(&g, "version_4_both.seg", q, len);
    store_u32le(q + 8, 1);
    store_u32le(q + len - 8, 3);
    emit(&g, "version_3_in_trailer.seg", q, len);
    free(q);

    /* blocks */
    emit_flipped(&g, "flipped_bit_time_block.seg", mid_of(find_ref(m, C_TS, BLK_DATA, 0)), 5);
    emit_flipped(&g, "flipped_bit_data_block.seg", mid_of(find_ref(m, C_V, BLK_DATA, 2)), 0);
    emit_flipped(&g, "flipped_bit_float_block.seg", mid_of(find_ref(m, C_F, BLK_DATA, 6)), 7);
    emit_flipped(&g, "flipped_bit_codes_block.seg", mid_of(find_ref(m, C_S, BLK_DATA, 3)), 3);
    emit_flipped(&g, "flipped_bit_dictionary_block.seg", mid_of(find_ref(m, C_S, BLK_DICT, 0)), 1);
    emit_flipped(&g, "flipped_bit_bitmap_block.seg", mid_of(find_ref(m, C_S, BLK_BITMAP, 0)), 4);
    q = dup_bytes(g.lz4, len);
    const ref_loc *r = find_ref(m, C_V, BLK_DATA, 1);
    memset(q + r->off, 0, r->len);
    emit(&g, "zeroed_data_block.seg", q, len);
    free(q);
    q = dup_bytes(g.lz4, len);
    /* swap the first bytes of ts granule 1 and v granule 1: both blocks are wrong, and
     * verify (column by column) meets ts granule 1 first */
    const ref_loc *ra = find_ref(m, C_TS, BLK_DATA, 1), *rb = find_ref(m, C_V, BLK_DATA, 1);
    size_t sw = ra->len < rb->len ? ra->len : rb->len;
    uint8_t tmp[4096];
    memcpy(tmp, q + ra->off, sw);
    memcpy(q + ra->off, q + rb->off, sw);
    memcpy(q + rb->off, tmp, sw);
    emit(&g, "swapped_block_bytes.seg", q, len);
    free(q);

    /* footer */
    emit_flipped(&g, "flipped_bit_footer_nrows.seg", (size_t)m->footer_off, 0);
    emit_flipped(&g, "flipped_bit_footer_column_name.seg", m->name_pos[C_F], 6);
    emit_flipped(&g, "flipped_bit_footer_block_ref.seg", find_ref(m, C_F, BLK_DATA, 2)->pos + 1, 2);
    emit_flipped(&g, "flipped_bit_footer_granule_min.seg", m->gran_min_pos[C_V][3], 0);
    emit_flipped(&g, "flipped_bit_footer_last_byte.seg", len - SEGMENT_TRAILER_SIZE - 1, 0);

    /* trailer */
    size_t tr = len - SEGMENT_TRAILER_SIZE;
    emit_flipped(&g, "flipped_bit_trailer_footer_offset.seg", tr + 0, 3);
    emit_flipped(&g, "flipped_bit_trailer_footer_len.seg", tr + 8, 1);
    emit_flipped(&g, "flipped_bit_trailer_checksum.seg", tr + 16, 0);
    emit_flipped(&g, "flipped_bit_trailer_magic.seg", tr + 29, 6);
    q = dup_bytes(g.lz4, len);
    store_u64le(q + tr, (uint64_t)len * 4);
    emit(&g, "footer_offset_outside.seg", q, len);
    store_u64le(q + tr, (uint64_t)tr - (uint64_t)len); /* + len wraps to tr */
    store_u64le(q + tr + 8, len);
    emit(&g, "footer_offset_wraps.seg", q, len);
    store_u64le(q + tr, (uint64_t)tr - (UINT64_C(1) << 40));
    store_u64le(q + tr + 8, UINT64_C(1) << 40);
    emit(&g, "footer_len_huge.seg", q, len);
    free(q);

    /* whole-file damage and other formats */
    q = malloc(len + 200);
    memcpy(q, g.lz4, len);
    memset(q + len, 0x5a, 100);
    emit(&g, "trailing_garbage.seg", q, len + 100);
    memset(q, 0x5a, 100);
    memcpy(q + 100, g.lz4, len);
    emit(&g, "leading_garbage.seg", q, len + 100);
    free(q);
    uint8_t garbage[2048];
    uint64_t seed = 0xbad;
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (uint8_t)test_rand_next(&seed);
    emit(&g, "garbage.seg", garbage, sizeof garbage);
    memcpy(garbage, SEGMENT_MAGIC, 8);
    store_u32le(garbage + 8, 1);
    store_u32le(garbage + 12, 0);
    uint8_t *gt = garbage + sizeof garbage - SEGMENT_TRAILER_SIZE;
    store_u64le(gt, 1024);
    store_u64le(gt + 8, sizeof garbage - SEGMENT_TRAILER_SIZE - 1024);
    store_u32le(gt + 24, 1);
    memcpy(gt + 28, SEGMENT_TRAILER_MAGIC, 4);
    emit(&g, "garbage_with_magics.seg", garbage, sizeof garbage);
    const char *text = "timestamp,value,name\n1700000000000,1.5,apple\n1700000001000,2.5,banana\n"
                       "1700000002000,3.5,cherry\n1700000003000,4.5,date\n";
    emit(&g, "text_file.seg", (const uint8_t *)text, strlen(text));
    const char *json = "{\"format\": \"strata-manifest\", \"version\": 1, \"segments\": "
                       "[{\"id\": 1, \"rows\": 200, \"min_time\": 1700000000000}]}\n";
    emit(&g, "json_file.seg", (const uint8_t *)json, strlen(json));

    /* semantic damage behind valid checksums (footer, and blocks of the none-codec file) */
    const seg_map *nm = &g.none_map;
    size_t nlen = g.none_len;
    q = dup_bytes(g.lz4, len);
    store_u64le(q + m->footer_off, SMALL_ROWS + 40);
    resum_footer(q, m);
    emit(&g, "footer_rows_mismatch_resummed.seg", q, len);
    free(q);
    q = dup_bytes(g.lz4, len);
    q[m->type_pos[C_F]] = 99;
    resum_footer(q, m);
    emit(&g, "footer_bad_column_type_resummed.seg", q, len);
    free(q);
    q = dup_bytes(g.lz4, len);
    q[m->time_col_pos] = C_V;
    resum_footer(q, m);
    emit(&g, "footer_time_column_not_timestamp_resummed.seg", q, len);
    free(q);
    q = dup_bytes(g.lz4, len);
    store_u64le(q + find_ref(m, C_F, BLK_DATA, 4)->pos, m->footer_off - 2);
    resum_footer(q, m);
    emit(&g, "block_ref_out_of_bounds_resummed.seg", q, len);
    free(q);
    q = dup_bytes(g.lz4, len);
    store_u64le(q + m->gran_min_pos[C_V][1], load_u64le(q + m->gran_min_pos[C_V][1]) - 1);
    resum_footer(q, m);
    emit(&g, "granule_min_wrong_resummed.seg", q, len);
    free(q);
    q = dup_bytes(g.lz4, len);
    size_t max_time_pos = (size_t)m->footer_off + 8 + 4 + 4 + 8;
    store_u64le(q + max_time_pos, load_u64le(q + max_time_pos) - 1);
    resum_footer(q, m);
    emit(&g, "time_range_wrong_resummed.seg", q, len);
    free(q);
    /* none codec: the raw encoded bytes are in the file */
    q = dup_bytes(g.none, nlen);
    r = find_ref(nm, C_V, BLK_DATA, 0);
    q[r->off] = q[r->off] == ENC_INT_FOR ? ENC_INT_DELTA : ENC_INT_FOR;
    resum_block(q, r);
    resum_footer(q, nm);
    emit(&g, "encoding_mismatch_resummed.seg", q, nlen);
    free(q);
    q = dup_bytes(g.none, nlen);
    r = find_ref(nm, C_V, BLK_DATA, 1);
    ASSERT_EQ(q[r->off], ENC_INT_FOR);
    q[r->off + 9] = 65; /* FOR width byte */
    resum_block(q, r);
    resum_footer(q, nm);
    emit(&g, "bad_width_resummed.seg", q, nlen);
    free(q);
    q = dup_bytes(g.none, nlen);
    r = find_ref(nm, C_S, BLK_DATA, 0);
    ASSERT_EQ(q[r->off], ENC_INT_FOR);
    store_u64le(q + r->off + 1, 1000); /* FOR base: every code is >= 1000 */
    resum_block(q, r);
    resum_footer(q, nm);
    emit(&g, "code_outside_dictionary_resummed.seg", q, nlen);
    free(q);
    q = dup_bytes(g.none, nlen);
    r = find_ref(nm, C_S, BLK_DICT, 0);
    q[r->off + 4 + 4 * 10] = 'z'; /* "apple" -> "zpple", now after "banana" */
    resum_block(q, r);
    resum_footer(q, nm);
    emit(&g, "dictionary_unsorted_resummed.seg", q, nlen);
    free(q);
    q = dup_bytes(g.none, nlen);
    r = find_ref(nm, C_S, BLK_BITMAP, 0);
    store_u32le(q + r->off, 11);
    resum_block(q, r);
    resum_footer(q, nm);
    emit(&g, "bitmap_count_wrong_resummed.seg", q, nlen);
    free(q);

    q = dup_bytes(g.zstd, g.zstd_len);
    seg_map zm;
    ASSERT(map_segment(q, g.zstd_len, &zm));
    r = find_ref(&zm, C_S, BLK_BITMAP, 0);
    ASSERT_EQ(q[r->pos + 16], STRATA_CODEC_ZSTD);
    store_u32le(q + r->pos + 12, UINT32_C(0xF0000000));
    resum_footer(q, &zm);
    emit(&g, "bitmap_raw_len_huge_resummed.seg", q, g.zstd_len);
    free(q);

    fprintf(stderr, "     wrote %d files to %s\n", g.written, g.dir);
    free(g.lz4);
    free(g.none);
    free(g.zstd);
}

TEST_LIST(T(corpus_generate), T(corpus_replay), T(exhaustive_lz4), T(exhaustive_zstd),
          T(exhaustive_none), T(trailer_footer_offset_wraps_is_corrupt),
          T(index_block_raw_len_beyond_codec_is_corrupt))
