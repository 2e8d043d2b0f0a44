/*
 * test_segment.c — segment files end to end: segment_writer_* → segment_open /
 * segment_read_*, dictionaries and bitmap indexes, granule min/max, pruning and the
 * writer's argument checks (engine/segment_write.c, engine/segment_read.c).
 *
 * A `dataset` holds rows of a schema with every column type (timestamp, int64, uint64,
 * int32, float64, bool, two strings) as plain arrays. write_dataset() builds each string
 * column's sorted dictionary, codes the rows and writes granules of the chosen size with
 * the chosen codec; check_dataset() reopens the file and compares everything the reader
 * exposes against the arrays: every value, row counts, time range, dictionary contents and
 * lookups, each bitmap against the rows holding its value, granule min/max/NaN flags, and
 * segment_verify. check_pruning() draws random predicates (every operator, IN/NOT IN with
 * 0..4 values, values in and out of the data, NaN, uint64 values above 2^63, strings not in
 * the dictionary) and checks that segment_prune_granules keeps every granule holding a row
 * that segment_pred_match_* accepts, and that segment_pred_rows is exactly the matching rows.
 * Files go to $STRATA_TEST_TMP (or /tmp) in a directory of their own.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/segment.h"
#include "engine/segment_format.h"
#include "test.h"

enum { C_TS, C_I64, C_U64, C_I32, C_F, C_B, C_S, C_TAG, NCOLS };
static const struct {
    const char *name;
    strata_type type;
} COLS[NCOLS] = {
    {"ts", STRATA_TIMESTAMP}, {"i64", STRATA_INT64}, {"u64", STRATA_UINT64},
    {"i32", STRATA_INT32},    {"f", STRATA_FLOAT64}, {"b", STRATA_BOOL},
    {"s", STRATA_STRING},     {"tag", STRATA_STRING},
};

/* ---- temp files -------------------------------------------------------------------- */

static char tmp_dir[1024];

/* Removes what failed tests left in tmp_dir, then the directory. */
static void tmp_cleanup(void)
{
    test_rmdir_flat(tmp_dir);
}

static const char *tmp_path(const char *name)
{
    static char path[1200];
    if (!tmp_dir[0]) {
        const char *base = getenv("STRATA_TEST_TMP");
        snprintf(tmp_dir, sizeof tmp_dir, "%s/test_segment.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmp_dir)) {
            fprintf(stderr, "mkdtemp %s: %s\n", tmp_dir, strerror(errno));
            abort();
        }
        atexit(tmp_cleanup);
    }
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    return path;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- datasets ---------------------------------------------------------------------- */

typedef struct dataset {
    uint32_t n;
    int64_t *iv[NCOLS];     /* int columns */
    double *fv;             /* C_F */
    strata_str *sv[NCOLS];  /* string columns; ptr owned by the dataset (malloc each) */
} dataset;

static void ds_alloc(dataset *d, uint32_t n)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    size_t m = n ? n : 1;
    for (int c = 0; c < NCOLS; c++) {
        if (strata_type_is_int(COLS[c].type))
            d->iv[c] = calloc(m, sizeof *d->iv[c]);
        else if (COLS[c].type == STRATA_STRING)
            d->sv[c] = calloc(m, sizeof *d->sv[c]);
    }
    d->fv = calloc(m, sizeof *d->fv);
}

static void ds_free(dataset *d)
{
    for (int c = 0; c < NCOLS; c++) {
        free(d->iv[c]);
        if (d->sv[c])
            for (uint32_t i = 0; i < d->n; i++)
                free((char *)d->sv[c][i].ptr);
        free(d->sv[c]);
    }
    free(d->fv);
    memset(d, 0, sizeof *d);
}

static void ds_set_str(dataset *d, int c, uint32_t row, const char *p, uint32_t len)
{
    char *q = malloc(len ? len : 1);
    if (len)
        memcpy(q, p, len);
    free((char *)d->sv[c][row].ptr);
    d->sv[c][row] = (strata_str){q, len};
}

static void ds_set_cstr(dataset *d, int c, uint32_t row, const char *s)
{
    ds_set_str(d, c, row, s, (uint32_t)strlen(s));
}

enum { K_RANDOM, K_EQUAL, K_DISTINCT_STR, K_EMPTY_STR, K_LONG_STR, K_EXTREMES };

static const int64_t int_extremes[] = {INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MIN + 1,
                                       INT64_MAX - 1};
static const uint64_t u64_extremes[] = {0, UINT64_MAX, UINT64_C(1) << 63, (UINT64_C(1) << 63) - 1,
                                        (UINT64_C(1) << 63) + 1, UINT64_MAX - 1, 1};

static double special_double(uint64_t r)
{
    static const double sp[] = {0.0, -0.0, INFINITY, -INFINITY, 5e-324, -5e-324, 1e300,
                                -1e300, 2.5, -2.5, 0.1};
    if (r % 5 == 0)
        return NAN;
    return sp[(r / 5) % (sizeof sp / sizeof sp[0])];
}

/* Fills a dataset of kind k. ts is sorted ascending (and tag too) except in K_EXTREMES. */
static void ds_fill(dataset *d, int kind, uint32_t n, uint64_t seed)
{
    ds_alloc(d, n);
    static const char *words[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta",
                                  "theta", "iota", "kappa", "lambda", "mu", "", "a", "ab",
                                  "abc", "B", "\xff", "zz"};
    size_t nwords = sizeof words / sizeof words[0];
    int64_t t = INT64_C(1700000000000);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t r = test_rand_next(&seed), r2 = test_rand_next(&seed);
        char tmp[64];
        switch (kind) {
        case K_EQUAL:
            d->iv[C_TS][i] = t;
            d->iv[C_I64][i] = -5;
            d->iv[C_U64][i] = (int64_t)UINT64_MAX;
            d->iv[C_I32][i] = INT32_MAX;
            d->fv[i] = i % 7 == 3 ? NAN : 3.25; /* equal values plus NaN */
            d->iv[C_B][i] = 1;
            ds_set_cstr(d, C_S, i, "same");
            ds_set_cstr(d, C_TAG, i, "tag");
            break;
        case K_EXTREMES:
            d->iv[C_TS][i] = int_extremes[r % 7];
            d->iv[C_I64][i] = int_extremes[(r >> 8) % 7];
            d->iv[C_U64][i] = (int64_t)u64_extremes[(r >> 16) % 7];
            d->iv[C_I32][i] = (r >> 24) % 2 ? INT32_MIN : INT32_MAX;
            /* whole granules of NaN now and then (rows 32..63) */
            d->fv[i] = i >= 32 && i < 64 ? NAN : special_double(r >> 32);
            d->iv[C_B][i] = (int64_t)((r >> 40) & 1);
            if (r2 % 3 == 0)
                ds_set_str(d, C_S, i, "\0\0", 2);
            else if (r2 % 3 == 1)
                ds_set_str(d, C_S, i, "\xff\xff\xff", 3);
            else
                ds_set_str(d, C_S, i, "\0", 1);
            ds_set_cstr(d, C_TAG, i, (r2 >> 8) % 2 ? "" : "\x7f");
            break;
        default:
            t += (int64_t)(r % 2000);
            d->iv[C_TS][i] = t;
            d->iv[C_I64][i] = (int64_t)(r2 % 20001) - 10000;
            d->iv[C_U64][i] = (int64_t)(test_rand_next(&seed) | (r % 2 ? UINT64_C(1) << 63 : 0));
            d->iv[C_I32][i] = (int32_t)(uint32_t)r2;
            d->fv[i] = r % 37 == 0 ? NAN : (double)(int64_t)(r2 % 100000) / 100.0;
            d->iv[C_B][i] = (int64_t)(r2 >> 63);
            if (kind == K_DISTINCT_STR) {
                snprintf(tmp, sizeof tmp, "row-%08u-%llx", i, (unsigned long long)(r2 % 1000));
                ds_set_cstr(d, C_S, i, tmp);
            } else if (kind == K_EMPTY_STR) {
                ds_set_cstr(d, C_S, i, r % 4 ? "" : "x");
            } else if (kind == K_LONG_STR) {
                uint32_t len = 10240 + (uint32_t)(r % 7);
                char *p = malloc(len);
                for (uint32_t j = 0; j < len; j++)
                    p[j] = (char)('a' + (j * 7 + r2) % 26);
                p[0] = (char)('a' + r % 5);
                ds_set_str(d, C_S, i, p, len);
                free(p);
            } else {
                ds_set_cstr(d, C_S, i, words[r2 % nwords]);
            }
            snprintf(tmp, sizeof tmp, "tag%u", (unsigned)((uint64_t)i * 5 / n));
            ds_set_cstr(d, C_TAG, i, kind == K_EMPTY_STR ? "" : tmp);
            break;
        }
    }
}

static void make_schema(strata_schema *sc)
{
    schema_init(sc);
    snprintf(sc->name, sizeof sc->name, "t");
    sc->ncols = NCOLS;
    for (int c = 0; c < NCOLS; c++) {
        snprintf(sc->cols[c].name, sizeof sc->cols[c].name, "%s", COLS[c].name);
        sc->cols[c].type = COLS[c].type;
    }
    sc->time_col = C_TS;
    sc->norder = 2;
    sc->order_by[0] = C_TAG;
    sc->order_by[1] = C_TS;
}

/* ---- dictionaries ------------------------------------------------------------------ */

static int str_cmp_qsort(const void *a, const void *b)
{
    return strata_str_cmp(*(const strata_str *)a, *(const strata_str *)b);
}

/* The distinct values of column c, sorted (pointers into d); caller frees. */
static strata_str *ds_dict(const dataset *d, int c, uint32_t *count)
{
    strata_str *v = malloc(sizeof *v * (d->n ? d->n : 1));
    memcpy(v, d->sv[c], sizeof *v * d->n);
    qsort(v, d->n, sizeof *v, str_cmp_qsort);
    uint32_t k = 0;
    for (uint32_t i = 0; i < d->n; i++)
        if (k == 0 || strata_str_cmp(v[k - 1], v[i]) != 0)
            v[k++] = v[i];
    *count = k;
    return v;
}

static uint32_t dict_code(const strata_str *dict, uint32_t n, strata_str v)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (strata_str_cmp(dict[mid], v) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- writing ----------------------------------------------------------------------- */

static int write_dataset(const char *path, const dataset *d, strata_codec codec,
                         uint32_t granule_rows, segment_info *info, strata_err *err)
{
    strata_schema sc;
    make_schema(&sc);
    segment_write_opts opts = {.codec = codec, .granule_rows = granule_rows};
    segment_writer *w = segment_writer_open(path, &sc, &opts, err);
    if (!w)
        return err->code;
    uint32_t gr = granule_rows ? granule_rows : SEGMENT_GRANULE_ROWS;
    uint32_t *codes[NCOLS] = {0};
    int rc = 0;
    for (int c = 0; c < NCOLS && rc == 0; c++) {
        if (COLS[c].type != STRATA_STRING)
            continue;
        uint32_t k;
        strata_str *dict = ds_dict(d, c, &k);
        if (d->n > 0)
            rc = segment_writer_set_dict(w, c, dict, k, err);
        codes[c] = malloc(sizeof *codes[c] * (d->n ? d->n : 1));
        for (uint32_t i = 0; i < d->n; i++)
            codes[c][i] = dict_code(dict, k, d->sv[c][i]);
        free(dict);
    }
    for (uint32_t row0 = 0; row0 < d->n && rc == 0; row0 += gr) {
        uint32_t cnt = d->n - row0 < gr ? d->n - row0 : gr;
        const void *cols[NCOLS];
        for (int c = 0; c < NCOLS; c++) {
            if (strata_type_is_int(COLS[c].type))
                cols[c] = d->iv[c] + row0;
            else if (COLS[c].type == STRATA_FLOAT64)
                cols[c] = d->fv + row0;
            else
                cols[c] = codes[c] + row0;
        }
        rc = segment_writer_add_granule(w, cnt, cols, err);
    }
    for (int c = 0; c < NCOLS; c++)
        free(codes[c]);
    if (rc) {
        segment_writer_abort(w);
        return rc;
    }
    return segment_writer_finish(w, info, err);
}

/* ---- checking ---------------------------------------------------------------------- */

static bool is_nan_bits(uint64_t b)
{
    double x;
    memcpy(&x, &b, 8);
    return isnan(x);
}

/* Expected granule min/max/flags of rows [r0, r0+cnt) of column c. */
static void expected_minmax(const dataset *d, int c, uint32_t r0, uint32_t cnt,
                            const strata_str *dict, uint32_t dn, uint64_t *lo, uint64_t *hi,
                            uint8_t *flags)
{
    *flags = 0;
    strata_type t = COLS[c].type;
    if (strata_type_is_int(t)) {
        int64_t slo = INT64_MAX, shi = INT64_MIN;
        uint64_t ulo = UINT64_MAX, uhi = 0;
        for (uint32_t i = r0; i < r0 + cnt; i++) {
            int64_t x = d->iv[c][i];
            slo = x < slo ? x : slo;
            shi = x > shi ? x : shi;
            ulo = (uint64_t)x < ulo ? (uint64_t)x : ulo;
            uhi = (uint64_t)x > uhi ? (uint64_t)x : uhi;
        }
        *lo = t == STRATA_UINT64 ? ulo : (uint64_t)slo;
        *hi = t == STRATA_UINT64 ? uhi : (uint64_t)shi;
    } else if (t == STRATA_FLOAT64) {
        double flo = INFINITY, fhi = -INFINITY;
        for (uint32_t i = r0; i < r0 + cnt; i++) {
            double x = d->fv[i];
            if (isnan(x)) {
                *flags |= SEGMENT_GRANULE_HAS_NAN;
                continue;
            }
            /* ties between 0.0 and -0.0 keep the first seen, like the writer */
            flo = x < flo ? x : flo;
            fhi = x > fhi ? x : fhi;
        }
        memcpy(lo, &flo, 8);
        memcpy(hi, &fhi, 8);
    } else {
        uint32_t clo = UINT32_MAX, chi = 0;
        for (uint32_t i = r0; i < r0 + cnt; i++) {
            uint32_t code = dict_code(dict, dn, d->sv[c][i]);
            clo = code < clo ? code : clo;
            chi = code > chi ? code : chi;
        }
        *lo = clo;
        *hi = chi;
    }
}

static void check_pruning(const segment *s, const dataset *d, uint64_t seed, int iters);
static long prune_total; /* granules pruned by check_pruning, for tests to look at */

/* Opens path and checks everything against d. */
static void check_dataset(const char *path, const dataset *d, strata_codec codec,
                          uint32_t granule_rows, const segment_info *info, int prune_iters)
{
    strata_err err = {0};
    segment *s = NULL;
    int rc = segment_open(path, &s, &err);
    if (rc)
        TEST_FAIL_("segment_open: %s", err.msg);
    uint32_t gr = granule_rows ? granule_rows : SEGMENT_GRANULE_ROWS;
    ASSERT_STR_EQ(segment_path(s), path);
    ASSERT_EQ(segment_format_version(s), SEGMENT_VERSION);
    ASSERT_U64_EQ(segment_nrows(s), d->n);
    ASSERT_EQ(segment_granule_rows(s), gr);
    ASSERT_EQ(segment_ngranules(s), (d->n + gr - 1) / gr);
    ASSERT_U64_EQ(segment_file_bytes(s), info->bytes);
    ASSERT_U64_EQ(info->nrows, d->n);
    struct stat st;
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_U64_EQ(st.st_size, info->bytes);

    /* time range */
    int64_t tmin = 0, tmax = -1;
    for (uint32_t i = 0; i < d->n; i++) {
        if (i == 0 || d->iv[C_TS][i] < tmin)
            tmin = d->iv[C_TS][i];
        if (i == 0 || d->iv[C_TS][i] > tmax)
            tmax = d->iv[C_TS][i];
    }
    ASSERT_EQ(segment_min_time(s), tmin);
    ASSERT_EQ(segment_max_time(s), tmax);
    ASSERT_EQ(info->min_time, tmin);
    ASSERT_EQ(info->max_time, tmax);

    /* schema */
    const strata_schema *sc = segment_schema(s);
    ASSERT_EQ(sc->ncols, NCOLS);
    ASSERT_EQ(sc->time_col, C_TS);
    ASSERT_EQ(sc->norder, 2);
    ASSERT_EQ(sc->order_by[0], C_TAG);
    ASSERT_EQ(sc->order_by[1], C_TS);
    for (int c = 0; c < NCOLS; c++) {
        ASSERT_STR_EQ(sc->cols[c].name, COLS[c].name);
        ASSERT_EQ(sc->cols[c].type, COLS[c].type);
    }

    /* dictionaries and bitmaps */
    strata_str *dicts[NCOLS] = {0};
    uint32_t dn[NCOLS] = {0};
    for (int c = 0; c < NCOLS; c++) {
        if (COLS[c].type != STRATA_STRING)
            continue;
        dicts[c] = ds_dict(d, c, &dn[c]);
        ASSERT_EQ(segment_dict_size(s, c), dn[c]);
        for (uint32_t k = 0; k < dn[c]; k++) {
            strata_str v = segment_dict_value(s, c, k);
            ASSERT_EQ(strata_str_cmp(v, dicts[c][k]), 0);
            ASSERT_EQ(segment_dict_find(s, c, v.ptr, v.len), k);
            ASSERT_EQ(segment_dict_lower_bound(s, c, v.ptr, v.len), k);
            /* v + "\0" sorts right after v and is absent unless it is the next value */
            char *longer = malloc(v.len + 1);
            if (v.len)
                memcpy(longer, v.ptr, v.len);
            longer[v.len] = 0;
            strata_str lv = {longer, v.len + 1};
            bool next_is_it = k + 1 < dn[c] && strata_str_cmp(dicts[c][k + 1], lv) == 0;
            ASSERT_EQ(segment_dict_find(s, c, longer, v.len + 1), next_is_it ? (int64_t)k + 1 : -1);
            ASSERT_EQ(segment_dict_lower_bound(s, c, longer, v.len + 1), k + 1);
            free(longer);
        }
        ASSERT_EQ(segment_dict_find(s, c, "\xff\xff\xff\xff\xff", 5), -1);
        ASSERT_EQ(segment_dict_lower_bound(s, c, "\xff\xff\xff\xff\xff", 5), dn[c]);
        /* bitmaps: exactly the rows holding each value */
        roaring_bitmap_t **want = calloc(dn[c] ? dn[c] : 1, sizeof *want);
        for (uint32_t k = 0; k < dn[c]; k++)
            want[k] = roaring_bitmap_create();
        for (uint32_t i = 0; i < d->n; i++)
            roaring_bitmap_add(want[dict_code(dicts[c], dn[c], d->sv[c][i])], i);
        for (uint32_t k = 0; k < dn[c]; k++) {
            const roaring_bitmap_t *got = segment_dict_bitmap(s, c, k);
            ASSERT(got != NULL);
            if (!roaring_bitmap_equals(got, want[k]))
                TEST_FAIL_("column %s code %u: bitmap has %llu rows, want %llu", COLS[c].name, k,
                           (unsigned long long)roaring_bitmap_get_cardinality(got),
                           (unsigned long long)roaring_bitmap_get_cardinality(want[k]));
            roaring_bitmap_free(want[k]);
        }
        free(want);
        ASSERT_GT(segment_dict_bytes(s, c), 0);
        ASSERT_GT(segment_bitmap_bytes(s, c), 0);
    }

    /* every block, and the granule min/max */
    segment_scratch scr = {0};
    int64_t *iv = malloc(sizeof *iv * gr);
    double *fv = malloc(sizeof *fv * gr);
    uint32_t *cv = malloc(sizeof *cv * gr);
    for (uint32_t g = 0; g < segment_ngranules(s); g++) {
        uint32_t r0 = g * gr;
        uint32_t cnt = segment_granule_nrows(s, g);
        ASSERT_EQ(cnt, d->n - r0 < gr ? d->n - r0 : gr);
        for (int c = 0; c < NCOLS; c++) {
            strata_type t = COLS[c].type;
            const segment_granule_meta *gi = segment_granule(s, c, g);
            if (codec == STRATA_CODEC_NONE)
                ASSERT_EQ(gi->block.codec, STRATA_CODEC_NONE);
            else
                ASSERT(gi->block.codec == STRATA_CODEC_NONE || gi->block.codec == codec);
            if (gi->block.codec == STRATA_CODEC_NONE)
                ASSERT_EQ(gi->block.stored_len, gi->block.raw_len);
            if (strata_type_is_int(t)) {
                rc = segment_read_ints(s, c, g, iv, &scr, &err);
                if (rc)
                    TEST_FAIL_("read %s granule %u: %s", COLS[c].name, g, err.msg);
                for (uint32_t i = 0; i < cnt; i++)
                    if (iv[i] != d->iv[c][r0 + i])
                        TEST_FAIL_("%s row %u: %" PRId64 " vs %" PRId64, COLS[c].name, r0 + i,
                                   iv[i], d->iv[c][r0 + i]);
                ASSERT(gi->block.encoding >= 1 && gi->block.encoding <= 4);
            } else if (t == STRATA_FLOAT64) {
                rc = segment_read_floats(s, c, g, fv, &scr, &err);
                if (rc)
                    TEST_FAIL_("read %s granule %u: %s", COLS[c].name, g, err.msg);
                for (uint32_t i = 0; i < cnt; i++)
                    if (memcmp(&fv[i], &d->fv[r0 + i], 8) != 0)
                        TEST_FAIL_("%s row %u: %.17g vs %.17g", COLS[c].name, r0 + i, fv[i],
                                   d->fv[r0 + i]);
                ASSERT(gi->block.encoding >= 16 && gi->block.encoding <= 18);
            } else {
                rc = segment_read_codes(s, c, g, cv, &scr, &err);
                if (rc)
                    TEST_FAIL_("read %s granule %u: %s", COLS[c].name, g, err.msg);
                for (uint32_t i = 0; i < cnt; i++) {
                    ASSERT_LT(cv[i], dn[c]);
                    strata_str v = segment_dict_value(s, c, cv[i]);
                    if (strata_str_cmp(v, d->sv[c][r0 + i]) != 0)
                        TEST_FAIL_("%s row %u: code %u holds another value", COLS[c].name,
                                   r0 + i, cv[i]);
                }
            }
            uint64_t lo, hi;
            uint8_t flags;
            expected_minmax(d, c, r0, cnt, dicts[c], dn[c], &lo, &hi, &flags);
            if (gi->min != lo || gi->max != hi || gi->flags != flags)
                TEST_FAIL_("%s granule %u: min/max/flags %016" PRIx64 "/%016" PRIx64
                           "/%u, want %016" PRIx64 "/%016" PRIx64 "/%u",
                           COLS[c].name, g, gi->min, gi->max, gi->flags, lo, hi, flags);
            if (t == STRATA_FLOAT64 && flags == 0)
                ASSERT(!is_nan_bits(lo) && !is_nan_bits(hi));
        }
    }
    free(iv);
    free(fv);
    free(cv);
    segment_scratch_free(&scr);
    for (int c = 0; c < NCOLS; c++)
        free(dicts[c]);

    rc = segment_verify(s, &err);
    if (rc)
        TEST_FAIL_("segment_verify: %s", err.msg);
    check_pruning(s, d, d->n * 7 + 1, prune_iters);
    segment_close(s);
}

/* ---- pruning ----------------------------------------------------------------------- */

typedef struct pred_store {
    segment_pred p;
    segment_value vals[4];
    char strs[4][40];
} pred_store;

static int64_t pick_int(const dataset *d, int c, uint64_t *seed)
{
    uint64_t r = test_rand_next(seed);
    int64_t v = d->n ? d->iv[c][r % d->n] : 0;
    switch ((r >> 32) % 8) {
    case 0: return (int64_t)((uint64_t)v - 1);
    case 1: return (int64_t)((uint64_t)v + 1);
    case 2: return int_extremes[(r >> 40) % 7];
    case 3: return (int64_t)u64_extremes[(r >> 40) % 7];
    case 4: return (int64_t)test_rand_next(seed);
    default: return v;
    }
}

static double pick_float(const dataset *d, uint64_t *seed)
{
    uint64_t r = test_rand_next(seed);
    double v = d->n ? d->fv[r % d->n] : 0.0;
    switch ((r >> 32) % 8) {
    case 0: return nextafter(v, -INFINITY);
    case 1: return nextafter(v, INFINITY);
    case 2: return special_double(r >> 40);
    case 3: return NAN;
    default: return v;
    }
}

/* A string in the data, or near one (prefix, extension), or absent. */
static strata_str pick_str(const dataset *d, int c, uint64_t *seed, char *buf)
{
    uint64_t r = test_rand_next(seed);
    strata_str v = d->n ? d->sv[c][r % d->n] : (strata_str){"", 0};
    uint32_t len = v.len < 30 ? v.len : 30;
    if (len)
        memcpy(buf, v.ptr, len);
    switch ((r >> 32) % 7) {
    case 0: /* prefix */
        return (strata_str){buf, len ? len - 1 : 0};
    case 1: /* extension */
        buf[len] = (char)(r >> 40);
        return (strata_str){buf, len + 1};
    case 2: /* last byte bumped */
        if (len)
            buf[len - 1]++;
        return (strata_str){buf, len};
    case 3:
        snprintf(buf, 40, "nope%u", (unsigned)(r >> 48));
        return (strata_str){buf, (uint32_t)strlen(buf)};
    case 4: return (strata_str){"", 0};
    default: return v.len <= 30 ? (strata_str){buf, len} : v;
    }
}

static void make_pred(pred_store *ps, const dataset *d, int c, uint64_t *seed)
{
    memset(ps, 0, sizeof *ps);
    uint64_t r = test_rand_next(seed);
    ps->p.col = c;
    ps->p.op = (segment_pred_op)(r % 8);
    ps->p.nvals = ps->p.op == SEGMENT_PRED_IN || ps->p.op == SEGMENT_PRED_NOT_IN ? (uint32_t)((r >> 8) % 5) : 1;
    ps->p.vals = ps->vals;
    for (uint32_t i = 0; i < ps->p.nvals; i++) {
        if (strata_type_is_int(COLS[c].type))
            ps->vals[i].i = pick_int(d, c, seed);
        else if (COLS[c].type == STRATA_FLOAT64)
            ps->vals[i].f = pick_float(d, seed);
        else
            ps->vals[i].s = pick_str(d, c, seed, ps->strs[i]);
    }
}

static bool row_matches(const dataset *d, const segment_pred *p, uint32_t row)
{
    strata_type t = COLS[p->col].type;
    if (strata_type_is_int(t))
        return segment_pred_match_int(t, p, d->iv[p->col][row]);
    if (t == STRATA_FLOAT64)
        return segment_pred_match_float(p, d->fv[row]);
    return segment_pred_match_str(p, d->sv[p->col][row]);
}

/* Random predicates (one or two, ANDed): pruning never drops a matching granule, and
 * segment_pred_rows on string columns is the exact matching row set. */
static void check_pruning(const segment *s, const dataset *d, uint64_t seed, int iters)
{
    uint32_t ng = segment_ngranules(s), gr = segment_granule_rows(s);
    uint8_t *keep = malloc(ng + 1);
    long pruned = 0;
    for (int it = 0; it < iters; it++) {
        pred_store ps[2];
        int np = 1 + (int)(test_rand_next(&seed) % 2);
        for (int k = 0; k < np; k++)
            make_pred(&ps[k], d, (int)(test_rand_next(&seed) % NCOLS), &seed);
        segment_pred preds[2] = {ps[0].p, ps[1].p};
        memset(keep, 0xEE, ng + 1);
        segment_prune_granules(s, preds, np, keep);
        ASSERT_EQ(keep[ng], 0xEE); /* writes exactly ngranules flags */
        for (uint32_t g = 0; g < ng; g++) {
            ASSERT(keep[g] == 0 || keep[g] == 1);
            bool any = false;
            uint32_t r0 = g * gr, cnt = segment_granule_nrows(s, g);
            for (uint32_t i = r0; i < r0 + cnt && !any; i++) {
                bool all = true;
                for (int k = 0; k < np && all; k++)
                    all = row_matches(d, &preds[k], i);
                any = all;
            }
            if (any && !keep[g]) {
                char desc[256] = "";
                for (int k = 0; k < np; k++) {
                    char one[96];
                    const segment_pred *p = &preds[k];
                    snprintf(one, sizeof one, "%s%s op %d nvals %u v0 %" PRId64 "/%g", k ? " AND " : "",
                             COLS[p->col].name, (int)p->op, p->nvals,
                             p->nvals ? p->vals[0].i : 0, p->nvals ? p->vals[0].f : 0.0);
                    strncat(desc, one, sizeof desc - strlen(desc) - 1);
                }
                TEST_FAIL_("granule %u pruned but has a matching row: %s", g, desc);
            }
            pruned += !keep[g];
        }
        /* exact row sets for string predicates */
        for (int k = 0; k < np; k++) {
            if (COLS[preds[k].col].type != STRATA_STRING)
                continue;
            roaring_bitmap_t *got = segment_pred_rows(s, &preds[k]);
            ASSERT(got != NULL);
            roaring_bitmap_t *want = roaring_bitmap_create();
            for (uint32_t i = 0; i < d->n; i++)
                if (row_matches(d, &preds[k], i))
                    roaring_bitmap_add(want, i);
            bool eq = roaring_bitmap_equals(got, want);
            uint64_t gc = roaring_bitmap_get_cardinality(got), wc = roaring_bitmap_get_cardinality(want);
            roaring_bitmap_free(got);
            roaring_bitmap_free(want);
            if (!eq)
                TEST_FAIL_("segment_pred_rows on %s op %d: %llu rows, want %llu",
                           COLS[preds[k].col].name, (int)preds[k].op, (unsigned long long)gc,
                           (unsigned long long)wc);
        }
    }
    free(keep);
    prune_total += pruned;
}

/* ---- round trips ------------------------------------------------------------------- */

static const strata_codec codecs[] = {STRATA_CODEC_NONE, STRATA_CODEC_LZ4, STRATA_CODEC_ZSTD};

static void roundtrip(int kind, uint32_t n, uint32_t granule_rows, uint64_t seed, int prune_iters)
{
    for (size_t ci = 0; ci < 3; ci++) {
        dataset d;
        ds_fill(&d, kind, n, seed + ci);
        char name[96];
        snprintf(name, sizeof name, "rt-%d-%u-%u-%zu.seg", kind, n, granule_rows, ci);
        const char *p = tmp_path(name);
        char path[1200];
        snprintf(path, sizeof path, "%s", p);
        unlink(path);
        strata_err err = {0};
        segment_info info;
        int rc = write_dataset(path, &d, codecs[ci], granule_rows, &info, &err);
        if (rc)
            TEST_FAIL_("write %s: %s", name, err.msg);
        check_dataset(path, &d, codecs[ci], granule_rows, &info, prune_iters);
        unlink(path);
        ds_free(&d);
    }
}

TEST(zero_rows)
{
    for (size_t ci = 0; ci < 3; ci++) {
        const char *path = tmp_path("empty.seg");
        unlink(path);
        dataset d;
        ds_alloc(&d, 0);
        strata_err err = {0};
        segment_info info;
        int rc = write_dataset(path, &d, codecs[ci], 16, &info, &err);
        if (rc)
            TEST_FAIL_("write: %s", err.msg);
        ASSERT_EQ(info.min_time, 0);
        ASSERT_EQ(info.max_time, -1);
        check_dataset(path, &d, codecs[ci], 16, &info, 20);
        segment *s;
        ASSERT_EQ(segment_open(path, &s, &err), 0);
        ASSERT_EQ(segment_ngranules(s), 0);
        ASSERT_EQ(segment_dict_size(s, C_S), 0);
        segment_value v = {.s = {"x", 1}};
        segment_pred p = {C_S, SEGMENT_PRED_NE, 1, &v};
        roaring_bitmap_t *rows = segment_pred_rows(s, &p);
        ASSERT(rows != NULL);
        ASSERT_U64_EQ(roaring_bitmap_get_cardinality(rows), 0);
        roaring_bitmap_free(rows);
        /* reading a granule that does not exist is an argument error */
        int64_t iv[1];
        segment_scratch scr = {0};
        ASSERT_EQ(segment_read_ints(s, C_TS, 0, iv, &scr, &err), STRATA_EINVAL);
        segment_scratch_free(&scr);
        segment_close(s);
        unlink(path);
        ds_free(&d);
    }
}

TEST(one_row) { roundtrip(K_RANDOM, 1, 16, 1, 100); }
TEST(exactly_one_granule) { roundtrip(K_RANDOM, 16, 16, 2, 200); }
TEST(one_granule_plus_one) { roundtrip(K_RANDOM, 17, 16, 3, 200); }
TEST(many_small_granules)
{
    prune_total = 0;
    roundtrip(K_RANDOM, 1000, 16, 4, 2000);
    ASSERT_GT(prune_total, 10000); /* random predicates do prune sorted, narrow granules */
}
TEST(many_granules_of_100) { roundtrip(K_RANDOM, 5000, 100, 5, 200); }
TEST(default_granule_size_plus_one) { roundtrip(K_RANDOM, SEGMENT_GRANULE_ROWS + 1, 0, 6, 30); }
TEST(max_granule_rows) { roundtrip(K_RANDOM, 70000, 65536, 15, 10); }
TEST(all_equal) { roundtrip(K_EQUAL, 500, 16, 7, 3000); }
TEST(all_distinct_strings) { roundtrip(K_DISTINCT_STR, 700, 64, 8, 200); }
TEST(empty_strings) { roundtrip(K_EMPTY_STR, 300, 16, 9, 200); }
TEST(long_strings) { roundtrip(K_LONG_STR, 40, 16, 10, 100); }
TEST(extremes) { roundtrip(K_EXTREMES, 300, 16, 11, 3000); }
TEST(extremes_one_granule) { roundtrip(K_EXTREMES, 100, 128, 12, 300); }

/* Sorted timestamps: a time-range predicate keeps exactly the granules whose range meets
 * it, so pruning does prune (and never too much). */
TEST(time_range_prunes_sorted_granules)
{
    dataset d;
    ds_fill(&d, K_RANDOM, 2000, 21);
    const char *p = tmp_path("sorted.seg");
    char path[1200];
    snprintf(path, sizeof path, "%s", p);
    unlink(path);
    strata_err err = {0};
    segment_info info;
    ASSERT_EQ(write_dataset(path, &d, STRATA_CODEC_LZ4, 16, &info, &err), 0);
    segment *s;
    ASSERT_EQ(segment_open(path, &s, &err), 0);
    uint32_t ng = segment_ngranules(s);
    uint8_t *keep = malloc(ng);
    uint64_t seed = 5;
    for (int it = 0; it < 200; it++) {
        int64_t a = d.iv[C_TS][test_rand_next(&seed) % d.n];
        int64_t b = a + 1 + (int64_t)(test_rand_next(&seed) % 50000);
        segment_value va = {.i = a}, vb = {.i = b};
        segment_pred preds[2] = {{C_TS, SEGMENT_PRED_GE, 1, &va}, {C_TS, SEGMENT_PRED_LT, 1, &vb}};
        segment_prune_granules(s, preds, 2, keep);
        uint32_t kept = 0;
        for (uint32_t g = 0; g < ng; g++) {
            int64_t lo = d.iv[C_TS][g * 16];
            int64_t hi = d.iv[C_TS][g * 16 + segment_granule_nrows(s, g) - 1];
            bool want = hi >= a && lo < b;
            ASSERT_EQ(keep[g], want);
            kept += keep[g];
        }
        ASSERT_GE(kept, 1);
        ASSERT_LT(kept, ng); /* 125 granules, the range covers at most ~4 */
    }
    /* tag is sorted too: an equality on it keeps about a fifth of the granules */
    segment_value tv = {.s = {"tag2", 4}};
    segment_pred tp = {C_TAG, SEGMENT_PRED_EQ, 1, &tv};
    segment_prune_granules(s, &tp, 1, keep);
    uint32_t kept = 0;
    for (uint32_t g = 0; g < ng; g++)
        kept += keep[g];
    ASSERT_GE(kept, ng / 5);
    ASSERT_LE(kept, ng / 5 + 2);
    /* a value not in the dictionary prunes everything */
    segment_value nv = {.s = {"tag22", 5}};
    tp.vals = &nv;
    segment_prune_granules(s, &tp, 1, keep);
    for (uint32_t g = 0; g < ng; g++)
        ASSERT_EQ(keep[g], 0);
    free(keep);
    segment_close(s);
    unlink(path);
    ds_free(&d);
}

/* The reference predicate semantics: uint64 compares unsigned, int64 signed, NaN matches
 * only != and NOT IN, strings in dictionary order. */
TEST(pred_match_semantics)
{
    segment_value big = {.i = (int64_t)((UINT64_C(1) << 63) + 5)};
    segment_pred lt = {0, SEGMENT_PRED_LT, 1, &big};
    ASSERT(segment_pred_match_int(STRATA_UINT64, &lt, 1));
    ASSERT(!segment_pred_match_int(STRATA_INT64, &lt, 1));
    ASSERT(segment_pred_match_int(STRATA_INT64, &lt, INT64_MIN));
    ASSERT(!segment_pred_match_int(STRATA_UINT64, &lt, (int64_t)UINT64_MAX));
    segment_value f = {.f = 1.0};
    segment_pred fp = {0, SEGMENT_PRED_NE, 1, &f};
    ASSERT(segment_pred_match_float(&fp, NAN));
    fp.op = SEGMENT_PRED_LT;
    ASSERT(!segment_pred_match_float(&fp, NAN));
    fp.op = SEGMENT_PRED_GE;
    ASSERT(!segment_pred_match_float(&fp, NAN));
    fp.op = SEGMENT_PRED_NOT_IN;
    ASSERT(segment_pred_match_float(&fp, NAN));
    fp.op = SEGMENT_PRED_IN;
    ASSERT(!segment_pred_match_float(&fp, NAN));
    segment_value sv[2] = {{.s = {"ab", 2}}, {.s = {"", 0}}};
    segment_pred sp = {0, SEGMENT_PRED_LT, 1, sv};
    ASSERT(segment_pred_match_str(&sp, (strata_str){"a", 1}));
    ASSERT(segment_pred_match_str(&sp, (strata_str){"", 0}));
    ASSERT(!segment_pred_match_str(&sp, (strata_str){"ab\0", 3}));
    ASSERT(!segment_pred_match_str(&sp, (strata_str){"b", 1}));
    sp.op = SEGMENT_PRED_IN;
    sp.nvals = 2;
    ASSERT(segment_pred_match_str(&sp, (strata_str){"", 0}));
    sp.nvals = 0;
    ASSERT(!segment_pred_match_str(&sp, (strata_str){"", 0}));
    sp.op = SEGMENT_PRED_NOT_IN;
    ASSERT(segment_pred_match_str(&sp, (strata_str){"", 0}));
    ASSERT(strata_str_cmp((strata_str){"a", 1}, (strata_str){"a\0", 2}) < 0);
    ASSERT(strata_str_cmp((strata_str){"\xff", 1}, (strata_str){"a", 1}) > 0);
    ASSERT_EQ(strata_str_cmp((strata_str){"", 0}, (strata_str){"", 0}), 0);
}

/* ---- writer argument checks -------------------------------------------------------- */

static segment_writer *open_writer(const char *path, uint32_t granule_rows, strata_err *err)
{
    strata_schema sc;
    make_schema(&sc);
    segment_write_opts opts = {.codec = STRATA_CODEC_LZ4, .granule_rows = granule_rows};
    unlink(path);
    return segment_writer_open(path, &sc, &opts, err);
}

TEST(open_existing_path_fails_and_keeps_file)
{
    const char *p = tmp_path("exists.seg");
    char path[1200];
    snprintf(path, sizeof path, "%s", p);
    unlink(path);
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fputs("precious bytes", f);
    fclose(f);
    strata_schema sc;
    make_schema(&sc);
    strata_err err = {0};
    segment_writer *w = segment_writer_open(path, &sc, NULL, &err);
    ASSERT(w == NULL);
    ASSERT(err.code != 0);
    ASSERT_CONTAINS(err.msg, path);
    char buf[64] = {0};
    f = fopen(path, "r");
    ASSERT(f != NULL);
    ASSERT(fgets(buf, sizeof buf, f) != NULL);
    fclose(f);
    ASSERT_STR_EQ(buf, "precious bytes");
    unlink(path);
}

TEST(writer_rejects_bad_dictionaries)
{
    const char *p = tmp_path("dict.seg");
    char path[1200];
    snprintf(path, sizeof path, "%s", p);
    strata_err err = {0};
    segment_writer *w = open_writer(path, 16, &err);
    ASSERT(w != NULL);
    strata_str unsorted[] = {{"b", 1}, {"a", 1}};
    ASSERT_EQ(segment_writer_set_dict(w, C_S, unsorted, 2, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "not sorted");
    strata_str dup[] = {{"a", 1}, {"a", 1}};
    ASSERT_EQ(segment_writer_set_dict(w, C_S, dup, 2, &err), STRATA_EINVAL);
    strata_str prefix_after[] = {{"ab", 2}, {"a", 1}};
    ASSERT_EQ(segment_writer_set_dict(w, C_S, prefix_after, 2, &err), STRATA_EINVAL);
    strata_str ok[] = {{"", 0}, {"a", 1}, {"a\0", 2}, {"b", 1}};
    ASSERT_EQ(segment_writer_set_dict(w, C_I64, ok, 4, &err), STRATA_EINVAL); /* not a string */
    ASSERT_EQ(segment_writer_set_dict(w, -1, ok, 4, &err), STRATA_EINVAL);
    ASSERT_EQ(segment_writer_set_dict(w, NCOLS, ok, 4, &err), STRATA_EINVAL);
    ASSERT_EQ(segment_writer_set_dict(w, C_S, ok, 4, &err), 0);
    ASSERT_EQ(segment_writer_set_dict(w, C_S, ok, 4, &err), STRATA_EINVAL); /* twice */
    ASSERT(file_exists(path));
    segment_writer_abort(w);
    ASSERT(!file_exists(path)); /* abort removes the partial file */
}

/* Fills one granule of n rows with codes (all columns) for the writer tests. */
typedef struct granule_buf {
    int64_t iv[NCOLS][16];
    double fv[16];
    uint32_t cv[NCOLS][16];
    const void *cols[NCOLS];
} granule_buf;

static void granule_fill(granule_buf *b, uint32_t n, uint32_t code)
{
    memset(b, 0, sizeof *b);
    for (int c = 0; c < NCOLS; c++) {
        for (uint32_t i = 0; i < n; i++) {
            b->iv[c][i] = COLS[c].type == STRATA_BOOL ? i % 2 : 1000 + i;
            b->cv[c][i] = code;
            b->fv[i] = i;
        }
        b->cols[c] = strata_type_is_int(COLS[c].type) ? (const void *)b->iv[c]
                     : COLS[c].type == STRATA_FLOAT64 ? (const void *)b->fv
                                                      : (const void *)b->cv[c];
    }
}

TEST(writer_rejects_bad_granules)
{
    const char *p = tmp_path("gran.seg");
    char path[1200];
    snprintf(path, sizeof path, "%s", p);
    strata_err err = {0};
    segment_writer *w = open_writer(path, 16, &err);
    ASSERT(w != NULL);
    granule_buf b;
    granule_fill(&b, 16, 0);
    /* no dictionary yet */
    ASSERT_EQ(segment_writer_add_granule(w, 16, b.cols, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "no dictionary");
    strata_str dict[] = {{"x", 1}, {"y", 1}};
    ASSERT_EQ(segment_writer_set_dict(w, C_S, dict, 2, &err), 0);
    ASSERT_EQ(segment_writer_set_dict(w, C_TAG, dict, 2, &err), 0);
    /* codes outside the dictionary */
    b.cv[C_S][3] = 2;
    ASSERT_EQ(segment_writer_add_granule(w, 16, b.cols, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "outside its dictionary");
    b.cv[C_S][3] = UINT32_MAX;
    ASSERT_EQ(segment_writer_add_granule(w, 16, b.cols, &err), STRATA_EINVAL);
    b.cv[C_S][3] = 0;
    /* sizes */
    ASSERT_EQ(segment_writer_add_granule(w, 0, b.cols, &err), STRATA_EINVAL);
    ASSERT_EQ(segment_writer_add_granule(w, 17, b.cols, &err), STRATA_EINVAL);
    ASSERT_EQ(segment_writer_add_granule(w, 16, b.cols, &err), 0);
    ASSERT_EQ(segment_writer_set_dict(w, C_S, dict, 2, &err), STRATA_EINVAL); /* late */
    ASSERT_EQ(segment_writer_add_granule(w, 5, b.cols, &err), 0);
    ASSERT_EQ(segment_writer_add_granule(w, 5, b.cols, &err), STRATA_EINVAL); /* after partial */
    ASSERT_CONTAINS(err.msg, "partial");
    segment_writer_abort(w);
    ASSERT(!file_exists(path));
}

/* A granule the writer refused (bad code in the last string column) must leave no trace:
 * the bitmaps of the string columns before it must not hold its rows. Broke when the
 * writer indexed columns one by one and failed half way through a granule. */
TEST(writer_rejected_granule_leaves_no_trace)
{
    const char *p = tmp_path("retry.seg");
    char path[1200];
    snprintf(path, sizeof path, "%s", p);
    strata_err err = {0};
    segment_writer *w = open_writer(path, 16, &err);
    ASSERT(w != NULL);
    strata_str dict[] = {{"x", 1}, {"y", 1}};
    ASSERT_EQ(segment_writer_set_dict(w, C_S, dict, 2, &err), 0);
    ASSERT_EQ(segment_writer_set_dict(w, C_TAG, dict, 2, &err), 0);
    granule_buf b;
    granule_fill(&b, 16, 1);
    b.cv[C_TAG][15] = 9; /* C_S is fine and comes first */
    ASSERT_EQ(segment_writer_add_granule(w, 16, b.cols, &err), STRATA_EINVAL);
    granule_fill(&b, 16, 0); /* the retry uses other codes for the same rows */
    ASSERT_EQ(segment_writer_add_granule(w, 16, b.cols, &err), 0);
    segment_info info;
    ASSERT_EQ(segment_writer_finish(w, &info, &err), 0);
    segment *s;
    int rc = segment_open(path, &s, &err);
    if (rc)
        TEST_FAIL_("open after a refused granule: %s", err.msg);
    rc = segment_verify(s, &err);
    if (rc)
        TEST_FAIL_("verify after a refused granule: %s", err.msg);
    ASSERT_U64_EQ(roaring_bitmap_get_cardinality(segment_dict_bitmap(s, C_S, 0)), 16);
    ASSERT_U64_EQ(roaring_bitmap_get_cardinality(segment_dict_bitmap(s, C_S, 1)), 0);
    /* the refused granule wrote no blocks: the first data block follows the header */
    ASSERT_U64_EQ(segment_granule(s, 0, 0)->block.offset, 16);
    segment_close(s);
    unlink(path);
}

/* A refused granule followed directly by finish gives a sound segment of the rows before. */
TEST(writer_rejected_last_granule_then_finish)
{
    const char *p = tmp_path("refused_last.seg");
    char path[1200];
    snprintf(path, sizeof path, "%s", p);
    strata_err err = {0};
    segment_writer *w = open_writer(path, 16, &err);
    ASSERT(w != NULL);
    strata_str dict[] = {{"x", 1}, {"y", 1}};
    ASSERT_EQ(segment_writer_set_dict(w, C_S, dict, 2, &err), 0);
    ASSERT_EQ(segment_writer_set_dict(w, C_TAG, dict, 2, &err), 0);
    granule_buf b;
    granule_fill(&b, 16, 1);
    ASSERT_EQ(segment_writer_add_granule(w, 16, b.cols, &err), 0);
    b.cv[C_TAG][0] = 2;
    ASSERT_EQ(segment_writer_add_granule(w, 16, b.cols, &err), STRATA_EINVAL);
    ASSERT_EQ(segment_writer_finish(w, NULL, &err), 0);
    segment *s;
    int rc = segment_open(path, &s, &err);
    if (rc)
        TEST_FAIL_("open: %s", err.msg);
    ASSERT_U64_EQ(segment_nrows(s), 16);
    rc = segment_verify(s, &err);
    if (rc)
        TEST_FAIL_("verify: %s", err.msg);
    segment_close(s);
    unlink(path);
}

TEST(writer_rejects_huge_granules)
{
    const char *p = tmp_path("huge.seg");
    char path[1200];
    snprintf(path, sizeof path, "%s", p);
    strata_err err = {0};
    segment_writer *w = open_writer(path, SEGMENT_MAX_GRANULE_ROWS + 1, &err);
    ASSERT(w == NULL);
    ASSERT_EQ(err.code, STRATA_EINVAL);
    ASSERT(!file_exists(path));
}

TEST(reader_argument_errors)
{
    strata_err err = {0};
    segment *s = (segment *)1;
    ASSERT_EQ(segment_open(tmp_path("does-not-exist.seg"), &s, &err), STRATA_ENOTFOUND);
    ASSERT(s == NULL);
    ASSERT_CONTAINS(err.msg, "does-not-exist.seg");

    dataset d;
    ds_fill(&d, K_RANDOM, 40, 3);
    const char *p = tmp_path("args.seg");
    char path[1200];
    snprintf(path, sizeof path, "%s", p);
    unlink(path);
    segment_info info;
    ASSERT_EQ(write_dataset(path, &d, STRATA_CODEC_LZ4, 16, &info, &err), 0);
    ASSERT_EQ(segment_open(path, &s, &err), 0);
    segment_scratch scr = {0};
    int64_t iv[16];
    double fv[16];
    uint32_t cv[16];
    ASSERT_EQ(segment_read_ints(s, C_F, 0, iv, &scr, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "'f'");
    ASSERT_EQ(segment_read_floats(s, C_I64, 0, fv, &scr, &err), STRATA_EINVAL);
    ASSERT_EQ(segment_read_codes(s, C_TS, 0, cv, &scr, &err), STRATA_EINVAL);
    ASSERT_EQ(segment_read_ints(s, C_TS, 3, iv, &scr, &err), STRATA_EINVAL);
    ASSERT_EQ(segment_read_ints(s, -1, 0, iv, &scr, &err), STRATA_EINVAL);
    ASSERT_EQ(segment_read_ints(s, NCOLS, 0, iv, &scr, &err), STRATA_EINVAL);
    ASSERT_EQ(segment_read_ints(s, C_TS, 2, iv, &scr, &err), 0); /* last, 8 rows */
    ASSERT_EQ(segment_granule_nrows(s, 2), 8);
    /* predicates on a column that does not exist keep everything; pred_rows refuses */
    segment_value v = {.i = 1};
    segment_pred bad = {NCOLS + 3, SEGMENT_PRED_EQ, 1, &v};
    uint8_t keep[3];
    segment_prune_granules(s, &bad, 1, keep);
    ASSERT(keep[0] && keep[1] && keep[2]);
    ASSERT(segment_pred_rows(s, &bad) == NULL);
    segment_pred notstr = {C_I64, SEGMENT_PRED_EQ, 1, &v};
    ASSERT(segment_pred_rows(s, &notstr) == NULL);
    segment_scratch_free(&scr);
    segment_close(s);
    unlink(path);
    ds_free(&d);
}

/* Bytes columns (rollup tier segments): values of every length round-trip, the file is
 * format version 3, verify passes, and no other version may hold them. */
TEST(bytes_column_round_trip)
{
    const char *p = tmp_path("bytes.seg");
    char path[1200];
    snprintf(path, sizeof path, "%s", p);
    unlink(path);
    strata_schema sc;
    schema_init(&sc);
    snprintf(sc.name, sizeof sc.name, "t");
    sc.ncols = 2;
    snprintf(sc.cols[0].name, sizeof sc.cols[0].name, "start");
    sc.cols[0].type = STRATA_TIMESTAMP;
    snprintf(sc.cols[1].name, sizeof sc.cols[1].name, "sk");
    sc.cols[1].type = STRATA_BYTES;
    sc.time_col = 0;
    sc.norder = 1;
    strata_err err = {0};
    segment_write_opts v2 = {.version = 2};
    ASSERT(segment_writer_open(path, &sc, &v2, &err) == NULL); /* bytes only in version 3 */
    segment_write_opts opts = {.codec = STRATA_CODEC_ZSTD, .granule_rows = 16};
    segment_writer *w = segment_writer_open(path, &sc, &opts, &err);
    ASSERT(w != NULL);
    enum { N = 40 };
    int64_t ts[N];
    uint32_t ends[N];
    uint8_t data[N * 300];
    uint32_t len = 0;
    uint64_t seed = 3;
    for (int i = 0; i < N; i++) {
        ts[i] = 1000 + i;
        uint32_t n = i % 7 == 0 ? 0 : (uint32_t)(test_rand_next(&seed) % 300);
        for (uint32_t k = 0; k < n; k++)
            data[len + k] = (uint8_t)test_rand_next(&seed);
        len += n;
        ends[i] = len;
    }
    for (int g = 0; g < N; g += 16) {
        uint32_t n = N - g < 16 ? (uint32_t)(N - g) : 16, e[16];
        uint32_t base = g ? ends[g - 1] : 0;
        for (uint32_t k = 0; k < n; k++)
            e[k] = ends[g + (int)k] - base;
        segment_bytes b = {e, data + base};
        const void *cols[2] = {ts + g, &b};
        ASSERT_EQ(segment_writer_add_granule(w, n, cols, &err), 0);
    }
    ASSERT_EQ(segment_writer_finish(w, NULL, &err), 0);
    segment *sg = NULL;
    ASSERT_EQ(segment_open(path, &sg, &err), 0);
    ASSERT_EQ((int)segment_format_version(sg), 3);
    ASSERT_EQ(segment_verify(sg, &err), 0);
    segment_scratch scr = {0};
    for (uint32_t g = 0; g < segment_ngranules(sg); g++) {
        uint32_t e[16];
        const uint8_t *d;
        ASSERT_EQ(segment_read_bytes(sg, 1, g, e, &d, &scr, &err), 0);
        uint32_t base = g ? ends[g * 16 - 1] : 0;
        for (uint32_t k = 0; k < segment_granule_nrows(sg, g); k++) {
            uint32_t lo = k ? e[k - 1] : 0;
            ASSERT_EQ(e[k] - lo, ends[g * 16 + k] - (g * 16 + k ? ends[g * 16 + k - 1] : 0));
            ASSERT(memcmp(d + lo, data + base + lo, e[k] - lo) == 0);
        }
    }
    int64_t iv[16];
    ASSERT(segment_read_ints(sg, 1, 0, iv, &scr, &err) != 0); /* not an integer column */
    segment_scratch_free(&scr);
    segment_close(sg);
    unlink(path);
}

TEST_LIST(T(bytes_column_round_trip), T(zero_rows), T(one_row), T(exactly_one_granule), T(one_granule_plus_one),
          T(many_small_granules), T(many_granules_of_100), T(default_granule_size_plus_one),
          T(max_granule_rows), T(all_equal), T(all_distinct_strings), T(empty_strings),
          T(long_strings), T(extremes), T(extremes_one_granule),
          T(time_range_prunes_sorted_granules), T(pred_match_semantics),
          T(open_existing_path_fails_and_keeps_file), T(writer_rejects_bad_dictionaries),
          T(writer_rejects_bad_granules), T(writer_rejected_granule_leaves_no_trace),
          T(writer_rejected_last_granule_then_finish), T(writer_rejects_huge_granules),
          T(reader_argument_errors))
