/*
 * memtable_flush.c — sorts a memtable's rows by (the hour of their time, then the schema's
 * order_by: segment.h's SEGMENT_SORT_BUCKET_MS) and writes them as one segment (through
 * segment_writer). Contract in memtable_flush.h.
 *
 * String columns first: the codes the rows use are ranked by their values, which gives
 * the segment's sorted dictionary and a remap from memtable code to segment code. Then
 * the time's bucket and every order_by column are mapped to an order-preserving u64 key
 * (signed ints and the bucket with the sign bit flipped, floats by the usual IEEE trick,
 * strings by their rank), and rows are ordered by an LSD radix sort that runs one stable
 * counting pass per 11-bit digit that actually varies, least significant part first. For
 * the usual (bucket, a few low-cardinality strings, time) key that is a few passes over
 * the rows. Last, granule by granule, the
 * columns are gathered in sorted order and handed to the writer.
 */
#include "engine/memtable_flush.h"

#include <stdlib.h>
#include <string.h>

#include "engine/encode.h"
#include "engine/memtable_internal.h"

typedef struct rank_ctx {
    const memtable *mt;
    int col;
} rank_ctx;

static _Thread_local rank_ctx sort_ctx;

static int cmp_codes(const void *a, const void *b)
{
    strata_str x = memtable_dict_value(sort_ctx.mt, sort_ctx.col, *(const uint32_t *)a);
    strata_str y = memtable_dict_value(sort_ctx.mt, sort_ctx.col, *(const uint32_t *)b);
    return strata_str_cmp(x, y);
}

static inline uint64_t row_value_bits(const memtable *mt, int col, uint64_t row)
{
    const void *chunk = mt->cols[col].chunks[row / MEMTABLE_CHUNK_ROWS];
    uint32_t slot = (uint32_t)(row % MEMTABLE_CHUNK_ROWS);
    if (mt->schema.cols[col].type == STRATA_STRING)
        return ((const uint32_t *)chunk)[slot];
    uint64_t v; /* memcpy: the slot may hold a double */
    memcpy(&v, (const char *)chunk + 8 * (size_t)slot, 8);
    return v;
}

/* Stable LSD radix sort of (key[i], perm[i]) pairs by key, 11-bit digits, only over the
 * digits that vary. Ping-pongs between the arrays and their twins; the result ends in
 * key/perm. */
#define RADIX_BITS 11
#define RADIX_SIZE (1u << RADIX_BITS)

static void radix_sort(uint64_t *key, uint32_t *perm, uint64_t *key2, uint32_t *perm2, uint64_t n)
{
    if (n < 2)
        return;
    uint64_t diff = 0;
    for (uint64_t i = 1; i < n; i++)
        diff |= key[i] ^ key[0];
    uint64_t *ka = key, *kb = key2;
    uint32_t *pa = perm, *pb = perm2;
    static const int passes = (64 + RADIX_BITS - 1) / RADIX_BITS;
    uint64_t count[RADIX_SIZE]; /* 16 KiB */
    for (int pass = 0; pass < passes; pass++) {
        unsigned shift = (unsigned)pass * RADIX_BITS;
        if (!((diff >> shift) & (RADIX_SIZE - 1)))
            continue;
        memset(count, 0, sizeof count);
        for (uint64_t i = 0; i < n; i++)
            count[(ka[i] >> shift) & (RADIX_SIZE - 1)]++;
        uint64_t sum = 0;
        for (uint32_t j = 0; j < RADIX_SIZE; j++) {
            uint64_t c = count[j];
            count[j] = sum;
            sum += c;
        }
        for (uint64_t i = 0; i < n; i++) {
            uint64_t dst = count[(ka[i] >> shift) & (RADIX_SIZE - 1)]++;
            kb[dst] = ka[i];
            pb[dst] = pa[i];
        }
        uint64_t *kt = ka;
        ka = kb;
        kb = kt;
        uint32_t *pt = pa;
        pa = pb;
        pb = pt;
    }
    if (ka != key) {
        memcpy(key, ka, n * sizeof *key);
        memcpy(perm, pa, n * sizeof *perm);
    }
}

/* Order-preserving 64-bit image of a row's value of sort column c (segment_sort_key;
 * strings by their rank, remap). */
static inline uint64_t sort_image(const memtable *mt, int c, strata_type t, const uint32_t *remap,
                                  uint64_t row)
{
    uint64_t v = row_value_bits(mt, c, row);
    return segment_sort_key(t, t == STRATA_STRING ? remap[v] : v);
}

/* Sort key part q of a row: 0 is the bucket of its time (order-preserving: the signed
 * bucket with the sign bit flipped), q >= 1 is order_by column q - 1's image. */
static inline int key_col(const strata_schema *sc, int q)
{
    return q == 0 ? sc->time_col : sc->order_by[q - 1];
}

static inline uint64_t key_image(const memtable *mt, const strata_schema *sc,
                                 uint32_t *const *remap, int q, uint64_t row)
{
    if (q == 0)
        return segment_sort_bucket_key((int64_t)row_value_bits(mt, sc->time_col, row));
    int c = sc->order_by[q - 1];
    return sort_image(mt, c, sc->cols[c].type, remap[c], row);
}

void memtable_flush_scratch_free(memtable_flush_scratch *fs)
{
    free(fs->perm);
    free(fs->perm2);
    free(fs->key);
    free(fs->key2);
    memset(fs, 0, sizeof *fs);
}

static int scratch_reserve(memtable_flush_scratch *fs, uint64_t n)
{
    if (fs->cap >= n)
        return 0;
    memtable_flush_scratch_free(fs);
    fs->perm = malloc(sizeof *fs->perm * n);
    fs->perm2 = malloc(sizeof *fs->perm2 * n);
    fs->key = malloc(sizeof *fs->key * n);
    fs->key2 = malloc(sizeof *fs->key2 * n);
    if (!fs->perm || !fs->perm2 || !fs->key || !fs->key2) {
        memtable_flush_scratch_free(fs);
        return STRATA_ENOMEM;
    }
    fs->cap = n;
    return 0;
}

int memtable_write_segment(memtable *mt, uint64_t nrows, const char *path,
                           const segment_write_opts *opts, memtable_flush_scratch *fs,
                           segment_info *info, strata_err *err)
{
    memtable_flush_scratch own = {0};
    if (!fs)
        fs = &own;
    const strata_schema *sc = &mt->schema;
    uint32_t granule = opts && opts->granule_rows ? opts->granule_rows : SEGMENT_GRANULE_ROWS;
    uint32_t *perm = NULL, *perm2 = NULL, *remap[STRATA_MAX_COLUMNS] = {0};
    uint64_t *key = NULL, *key2 = NULL;
    void *gbuf[STRATA_MAX_COLUMNS] = {0};
    strata_str *dict = NULL;
    segment_writer *w = NULL;
    int rc = 0;
    if (nrows > memtable_nrows(mt) || nrows >= SEGMENT_MAX_ROWS)
        return strata_err_set(err, STRATA_EINVAL, "memtable: cannot write %llu rows",
                              (unsigned long long)nrows);
    if (scratch_reserve(fs, nrows + 1) != 0)
        goto oom;
    perm = fs->perm;
    perm2 = fs->perm2;
    key = fs->key;
    key2 = fs->key2;
    for (uint64_t i = 0; i < nrows; i++)
        perm[i] = (uint32_t)i;

    /* String columns: segment codes = rank of the value among the values used. */
    w = segment_writer_open(path, sc, opts, err);
    if (!w) {
        rc = err ? err->code : STRATA_EIO;
        goto done;
    }
    for (int c = 0; c < sc->ncols; c++) {
        if (sc->cols[c].type != STRATA_STRING)
            continue;
        /* Only codes of rows below nrows are ours to read (the writer may be adding more):
         * size everything by the largest code those rows hold. */
        uint32_t dn = 0;
        for (uint64_t r = 0; r < nrows; r++) {
            uint32_t code = (uint32_t)row_value_bits(mt, c, r);
            dn = code + 1 > dn ? code + 1 : dn;
        }
        uint8_t *used = calloc(dn + 1, 1);
        uint32_t *codes = malloc(sizeof *codes * (dn + 1));
        remap[c] = malloc(sizeof *remap[c] * (dn + 1));
        free(dict);
        dict = malloc(sizeof *dict * (dn + 1));
        if (!used || !codes || !remap[c] || !dict) {
            free(used);
            free(codes);
            goto oom;
        }
        for (uint64_t r = 0; r < nrows; r++)
            used[row_value_bits(mt, c, r)] = 1;
        uint32_t nu = 0;
        for (uint32_t code = 0; code < dn; code++)
            if (used[code])
                codes[nu++] = code;
        sort_ctx = (rank_ctx){mt, c};
        qsort(codes, nu, sizeof *codes, cmp_codes);
        for (uint32_t i = 0; i < nu; i++) {
            remap[c][codes[i]] = i;
            dict[i] = memtable_dict_value(mt, c, codes[i]);
        }
        free(used);
        free(codes);
        rc = segment_writer_set_dict(w, c, dict, nu, err);
        if (rc)
            goto done;
    }

    /* Order rows by the sort key: the time's bucket (segment.h), then order_by. Each key
     * part's image, minus its minimum, needs bits_needed(range) bits; consecutive parts
     * are packed into one 64-bit key while they fit (bucket + a few strings + time make a
     * single key), and keys are radix-sorted least significant first, each pass stable. */
    {
        int nkeys = sc->norder + 1;
        uint64_t kmin[STRATA_MAX_COLUMNS + 1];
        unsigned kbits[STRATA_MAX_COLUMNS + 1];
        int q0 = opts && opts->version == 1 ? 1 : 0; /* the version-1 order (tests) */
        for (int q = q0; q < nkeys; q++) {
            uint64_t lo = UINT64_MAX, hi = 0;
            for (uint64_t r = 0; r < nrows; r++) {
                uint64_t v = key_image(mt, sc, remap, q, r);
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
            kmin[q] = lo;
            kbits[q] = nrows ? bits_needed(hi - lo) : 0;
        }
        int k = nkeys - 1;
        while (k >= q0) {
            /* Group [first, k] fits in 64 bits; part k is least significant. */
            int first = k;
            unsigned total = kbits[k];
            while (first > q0 && total + kbits[first - 1] <= 64) {
                first--;
                total += kbits[first];
            }
            if (total > 0) {
                for (uint64_t i = 0; i < nrows; i++) {
                    if ((i & 15) == 0 && i + 16 < nrows)
                        for (int q = first; q <= k; q++)
                            __builtin_prefetch(
                                mt->cols[key_col(sc, q)].chunks[perm[i + 16] / MEMTABLE_CHUNK_ROWS]);
                    uint64_t key_v = 0;
                    for (int q = first; q <= k; q++) {
                        uint64_t v = key_image(mt, sc, remap, q, perm[i]) - kmin[q];
                        key_v = kbits[q] == 64 ? v : (key_v << kbits[q]) | v;
                    }
                    key[i] = key_v;
                }
                radix_sort(key, perm, key2, perm2, nrows);
            }
            k = first - 1;
        }
    }

    for (int c = 0; c < sc->ncols; c++) {
        gbuf[c] = malloc(8 * (size_t)granule);
        if (!gbuf[c])
            goto oom;
    }
    for (uint64_t g0 = 0; g0 < nrows; g0 += granule) {
        uint32_t n = (uint32_t)(nrows - g0 < granule ? nrows - g0 : granule);
        for (int c = 0; c < sc->ncols; c++) {
            void *const *chunks = mt->cols[c].chunks;
            const uint32_t *pr = perm + g0;
            if (sc->cols[c].type == STRATA_STRING) {
                uint32_t *out = gbuf[c];
                for (uint32_t i = 0; i < n; i++) {
                    if (i + 48 < n) {
                        uint32_t f = pr[i + 48];
                        __builtin_prefetch((const uint32_t *)chunks[f / MEMTABLE_CHUNK_ROWS] +
                                           f % MEMTABLE_CHUNK_ROWS);
                    }
                    uint32_t r = pr[i];
                    out[i] = remap[c][((const uint32_t *)chunks[r / MEMTABLE_CHUNK_ROWS])
                                          [r % MEMTABLE_CHUNK_ROWS]];
                }
            } else {
                char *out = gbuf[c];
                for (uint32_t i = 0; i < n; i++) {
                    if (i + 48 < n) {
                        uint32_t f = pr[i + 48];
                        __builtin_prefetch((const char *)chunks[f / MEMTABLE_CHUNK_ROWS] +
                                           8 * (size_t)(f % MEMTABLE_CHUNK_ROWS));
                    }
                    uint32_t r = pr[i];
                    memcpy(out + 8 * (size_t)i,
                           (const char *)chunks[r / MEMTABLE_CHUNK_ROWS] + 8 * (size_t)(r % MEMTABLE_CHUNK_ROWS), 8);
                }
            }
        }
        rc = segment_writer_add_granule(w, n, (const void *const *)gbuf, err);
        if (rc)
            goto done;
    }
    rc = segment_writer_finish(w, info, err);
    w = NULL;
    goto done;
oom:
    rc = strata_err_set(err, STRATA_ENOMEM, "memtable: out of memory writing %s", path);
done:
    if (w)
        segment_writer_abort(w);
    for (int c = 0; c < sc->ncols; c++) {
        free(remap[c]);
        free(gbuf[c]);
    }
    free(dict);
    memtable_flush_scratch_free(&own);
    return rc;
}
