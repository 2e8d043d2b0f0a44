/*
 * memtable.c — append-only chunked columns with lock-free readers; sort and flush to a
 * segment. See memtable.h for the concurrency contract.
 *
 * Layout: for each column an array of chunk pointers sized for max_rows at creation
 * (so it never reallocates under readers); each chunk is MEMTABLE_CHUNK_ROWS slots of
 * 8 bytes (int64 / double) or 4 bytes (string codes). Strings: a writer-only open
 * addressing hash (XXH3 of the bytes) maps value -> code; code -> (ptr, len) entries live
 * in fixed chunks too; bytes are copied into an arena of 64 KiB blocks.
 *
 * Flush sort: every order_by column is mapped to an order-preserving u64 key (signed ints
 * with the sign bit flipped, floats by the usual IEEE trick, strings by rank of their
 * value), and rows are ordered by an LSD radix sort that runs one stable counting pass per
 * key byte that actually varies, least significant column first. For the usual (a few
 * low-cardinality strings, time) key that is 5-7 passes over the rows.
 */
#include "engine/memtable.h"

#include "engine/encode.h"
#include "engine/fault.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL /* interning hashes short strings: inlining matters */
#include <xxhash.h>

#define DICT_CHUNK 4096
#define ARENA_BLOCK (64 * 1024)

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    char data[];
} arena_block;

typedef struct mt_dict {
    uint32_t *slots; /* code + 1; 0 = empty */
    uint32_t nslots; /* power of two */
    uint32_t n;      /* codes assigned */
    strata_str **entries; /* chunks of DICT_CHUNK */
    uint64_t *hashes;     /* per code, to rehash without rereading (writer only) */
    uint64_t hashes_cap;
    arena_block *arena;
} mt_dict;

typedef struct mt_col {
    void **chunks;
    mt_dict dict;
} mt_col;

struct memtable {
    strata_schema schema;
    int64_t part_key;
    uint64_t max_rows, max_chunks, max_dict_chunks;
    _Atomic uint64_t nrows;        /* published: readers see rows below it */
    uint64_t staged;               /* writer only: rows written, published or not */
    int64_t staged_min, staged_max; /* writer only: time range of the staged rows */
    _Atomic uint64_t bytes;
    _Atomic int64_t min_time, max_time;
    _Atomic int refs;
    mt_col cols[STRATA_MAX_COLUMNS];
};

/* ---- chunk pool ------------------------------------------------------------------
 * Freed memtables give their column chunks to a process-wide pool (bounded), and new
 * memtables take from it: steady ingestion then touches no fresh pages, which would
 * otherwise cost a page fault per 4 KiB (a fifth of the write path's time). */
#define POOL_MAX_BYTES (512u << 20) /* the default memory budget of one table */

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static void *pool_head[2]; /* [0]: 4-byte chunks, [1]: 8-byte chunks; next pointer in slot 0 */
static uint64_t pool_bytes;

static void *chunk_alloc(size_t width)
{
    if (fault_hit(FAULT_MEMTABLE_ALLOC))
        return NULL;
    int k = width == 8;
    pthread_mutex_lock(&pool_lock);
    void *c = pool_head[k];
    if (c) {
        memcpy(&pool_head[k], c, sizeof(void *));
        pool_bytes -= width * MEMTABLE_CHUNK_ROWS;
    }
    pthread_mutex_unlock(&pool_lock);
    return c ? c : malloc(width * MEMTABLE_CHUNK_ROWS);
}

static void chunk_free(void *c, size_t width)
{
    if (!c)
        return;
    int k = width == 8;
    pthread_mutex_lock(&pool_lock);
    if (pool_bytes + width * MEMTABLE_CHUNK_ROWS <= POOL_MAX_BYTES) {
        memcpy(c, &pool_head[k], sizeof(void *));
        pool_head[k] = c;
        pool_bytes += width * MEMTABLE_CHUNK_ROWS;
        c = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    free(c);
}

void memtable_pool_trim(void)
{
    pthread_mutex_lock(&pool_lock);
    for (int k = 0; k < 2; k++)
        while (pool_head[k]) {
            void *c = pool_head[k];
            memcpy(&pool_head[k], c, sizeof(void *));
            free(c);
        }
    pool_bytes = 0;
    pthread_mutex_unlock(&pool_lock);
}

memtable *memtable_create(const strata_schema *schema, int64_t part_key, uint64_t max_rows,
                          strata_err *err)
{
    memtable *mt = fault_hit(FAULT_MEMTABLE_ALLOC) ? NULL : calloc(1, sizeof *mt);
    if (!mt)
        goto oom;
    mt->schema = *schema;
    mt->part_key = part_key;
    mt->max_rows = max_rows ? max_rows : 1;
    mt->max_chunks = (mt->max_rows + MEMTABLE_CHUNK_ROWS - 1) / MEMTABLE_CHUNK_ROWS;
    mt->max_dict_chunks = (mt->max_rows + DICT_CHUNK - 1) / DICT_CHUNK + 1;
    atomic_init(&mt->nrows, 0);
    atomic_init(&mt->min_time, 0);
    atomic_init(&mt->max_time, -1);
    mt->staged_min = 0;
    mt->staged_max = -1;
    atomic_init(&mt->refs, 1);
    uint64_t bytes = sizeof *mt;
    for (int c = 0; c < schema->ncols; c++) {
        mt->cols[c].chunks = calloc(mt->max_chunks, sizeof(void *));
        if (!mt->cols[c].chunks)
            goto oom;
        bytes += mt->max_chunks * sizeof(void *);
        if (schema->cols[c].type == STRATA_STRING) {
            mt_dict *d = &mt->cols[c].dict;
            d->entries = calloc(mt->max_dict_chunks, sizeof *d->entries);
            d->nslots = 1024;
            d->slots = calloc(d->nslots, sizeof *d->slots);
            if (!d->entries || !d->slots)
                goto oom;
            bytes += mt->max_dict_chunks * sizeof(void *) + d->nslots * 4;
        }
    }
    atomic_init(&mt->bytes, bytes);
    return mt;
oom:
    strata_err_set(err, STRATA_ENOMEM, "memtable: out of memory");
    if (mt)
        memtable_unref(mt);
    return NULL;
}

static void memtable_free(memtable *mt)
{
    for (int c = 0; c < mt->schema.ncols; c++) {
        mt_col *col = &mt->cols[c];
        if (col->chunks)
            for (uint64_t i = 0; i < mt->max_chunks; i++)
                chunk_free(col->chunks[i], mt->schema.cols[c].type == STRATA_STRING ? 4 : 8);
        free(col->chunks);
        mt_dict *d = &col->dict;
        if (d->entries)
            for (uint64_t i = 0; i < mt->max_dict_chunks; i++)
                free(d->entries[i]);
        free(d->entries);
        free(d->slots);
        free(d->hashes);
        while (d->arena) {
            arena_block *next = d->arena->next;
            free(d->arena);
            d->arena = next;
        }
    }
    free(mt);
}

void memtable_ref(memtable *mt)
{
    atomic_fetch_add_explicit(&mt->refs, 1, memory_order_relaxed);
}

void memtable_unref(memtable *mt)
{
    if (mt && atomic_fetch_sub_explicit(&mt->refs, 1, memory_order_acq_rel) == 1)
        memtable_free(mt);
}

uint64_t memtable_nrows(const memtable *mt)
{
    return atomic_load_explicit(&((memtable *)mt)->nrows, memory_order_acquire);
}
uint64_t memtable_bytes(const memtable *mt)
{
    return atomic_load_explicit(&((memtable *)mt)->bytes, memory_order_relaxed);
}
uint64_t memtable_max_rows(const memtable *mt) { return mt->max_rows; }
int64_t memtable_part_key(const memtable *mt) { return mt->part_key; }
int64_t memtable_min_time(const memtable *mt)
{
    return atomic_load_explicit(&((memtable *)mt)->min_time, memory_order_relaxed);
}
int64_t memtable_max_time(const memtable *mt)
{
    return atomic_load_explicit(&((memtable *)mt)->max_time, memory_order_relaxed);
}
const strata_schema *memtable_schema(const memtable *mt) { return &mt->schema; }

const int64_t *memtable_chunk_ints(const memtable *mt, int col, uint64_t chunk)
{
    return mt->cols[col].chunks[chunk];
}
const double *memtable_chunk_floats(const memtable *mt, int col, uint64_t chunk)
{
    return mt->cols[col].chunks[chunk];
}
const uint32_t *memtable_chunk_codes(const memtable *mt, int col, uint64_t chunk)
{
    return mt->cols[col].chunks[chunk];
}

strata_str memtable_dict_value(const memtable *mt, int col, uint32_t code)
{
    return mt->cols[col].dict.entries[code / DICT_CHUNK][code % DICT_CHUNK];
}

/* ---- writer side ----------------------------------------------------------------- */

static const char *arena_copy(mt_dict *d, const char *p, uint32_t len, uint64_t *bytes)
{
    if (!d->arena || d->arena->cap - d->arena->used < len) {
        size_t cap = len > ARENA_BLOCK ? len : ARENA_BLOCK;
        arena_block *b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = d->arena;
        b->used = 0;
        b->cap = cap;
        d->arena = b;
        *bytes += sizeof *b + cap;
    }
    char *dst = d->arena->data + d->arena->used;
    if (len)
        memcpy(dst, p, len);
    d->arena->used += len;
    return dst;
}

static bool dict_rehash(mt_dict *d, uint64_t *bytes)
{
    uint32_t nslots = d->nslots * 2;
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return false;
    for (uint32_t code = 0; code < d->n; code++) {
        uint32_t i = (uint32_t)d->hashes[code] & (nslots - 1);
        while (slots[i])
            i = (i + 1) & (nslots - 1);
        slots[i] = code + 1;
    }
    free(d->slots);
    *bytes += (uint64_t)(nslots - d->nslots) * 4;
    d->slots = slots;
    d->nslots = nslots;
    return true;
}

/* Code of (p, len), interning it if new. Returns -1 when out of memory. */
static int64_t dict_intern(memtable *mt, mt_dict *d, const char *p, uint32_t len, uint64_t *bytes)
{
    uint64_t h = XXH3_64bits(p, len);
    uint32_t mask = d->nslots - 1;
    uint32_t i = (uint32_t)h & mask;
    while (d->slots[i]) {
        uint32_t code = d->slots[i] - 1;
        if (d->hashes[code] == h) {
            strata_str e = d->entries[code / DICT_CHUNK][code % DICT_CHUNK];
            if (e.len == len && (len == 0 || memcmp(e.ptr, p, len) == 0))
                return code;
        }
        i = (i + 1) & mask;
    }
    uint32_t code = d->n;
    if (code / DICT_CHUNK >= mt->max_dict_chunks || fault_hit(FAULT_MEMTABLE_ALLOC))
        return -1;
    if (!d->entries[code / DICT_CHUNK]) {
        d->entries[code / DICT_CHUNK] = malloc(sizeof(strata_str) * DICT_CHUNK);
        if (!d->entries[code / DICT_CHUNK])
            return -1;
        *bytes += sizeof(strata_str) * DICT_CHUNK;
    }
    if (code >= d->hashes_cap) {
        uint64_t cap = d->hashes_cap ? d->hashes_cap * 2 : 1024;
        uint64_t *hs = realloc(d->hashes, cap * sizeof *hs);
        if (!hs)
            return -1;
        *bytes += (cap - d->hashes_cap) * sizeof *hs;
        d->hashes = hs;
        d->hashes_cap = cap;
    }
    const char *copy = arena_copy(d, p, len, bytes);
    if (!copy)
        return -1;
    d->entries[code / DICT_CHUNK][code % DICT_CHUNK] = (strata_str){copy, len};
    d->hashes[code] = h;
    d->slots[i] = code + 1;
    d->n++;
    if ((uint64_t)d->n * 2 > d->nslots && !dict_rehash(d, bytes))
        return -1; /* the code stays valid; the next intern retries the growth */
    return code;
}

int memtable_stage(memtable *mt, const row_batch *b, const uint32_t *rows, uint32_t n,
                   strata_err *err)
{
    if (!rows)
        n = b->nrows;
    uint64_t start = mt->staged;
    if (start + n > mt->max_rows)
        return strata_err_set(err, STRATA_EFULL, "memtable: %u rows do not fit (%llu of %llu)",
                              n, (unsigned long long)start, (unsigned long long)mt->max_rows);
    if (n == 0)
        return 0;
    const strata_schema *sc = &mt->schema;
    uint64_t bytes = 0;
    /* Allocate the chunks the new rows need first, so a failure stages nothing. */
    for (uint64_t ch = start / MEMTABLE_CHUNK_ROWS; ch <= (start + n - 1) / MEMTABLE_CHUNK_ROWS; ch++)
        for (int c = 0; c < sc->ncols; c++) {
            if (mt->cols[c].chunks[ch])
                continue;
            size_t width = sc->cols[c].type == STRATA_STRING ? 4 : 8;
            mt->cols[c].chunks[ch] = chunk_alloc(width);
            if (!mt->cols[c].chunks[ch]) {
                atomic_fetch_add_explicit(&mt->bytes, bytes, memory_order_relaxed);
                return strata_err_set(err, STRATA_ENOMEM, "memtable: out of memory");
            }
            bytes += width * MEMTABLE_CHUNK_ROWS;
        }
    /* Column by column, chunk run by chunk run, with the type decided once per column.
     * Values land past the published count, where no reader looks. */
    for (int c = 0; c < sc->ncols; c++) {
        strata_type t = sc->cols[c].type;
        void **chunks = mt->cols[c].chunks;
        for (uint32_t k = 0; k < n;) {
            uint64_t at = start + k;
            uint32_t slot = (uint32_t)(at % MEMTABLE_CHUNK_ROWS);
            uint32_t run = MEMTABLE_CHUNK_ROWS - slot;
            if (run > n - k)
                run = n - k;
            void *chunk = chunks[at / MEMTABLE_CHUNK_ROWS];
            if (strata_type_is_int(t) || t == STRATA_FLOAT64) {
                const char *src = strata_type_is_int(t) ? (const char *)b->i[c] : (const char *)b->f[c];
                char *dst = (char *)chunk + 8 * (size_t)slot;
                if (!rows)
                    memcpy(dst, src + 8 * (size_t)k, 8 * (size_t)run);
                else
                    for (uint32_t j = 0; j < run; j++)
                        memcpy(dst + 8 * (size_t)j, src + 8 * (size_t)rows[k + j], 8);
            } else {
                uint32_t *dst = (uint32_t *)chunk + slot;
                mt_dict *d = &mt->cols[c].dict;
                for (uint32_t j = 0; j < run; j++) {
                    strata_str v = row_batch_get_str(b, c, rows ? rows[k + j] : k + j);
                    int64_t code = dict_intern(mt, d, v.ptr, v.len, &bytes);
                    if (code < 0) {
                        /* Codes interned so far stay (unused); the rows are not staged. */
                        atomic_fetch_add_explicit(&mt->bytes, bytes, memory_order_relaxed);
                        return strata_err_set(err, STRATA_ENOMEM, "memtable: out of memory");
                    }
                    dst[j] = (uint32_t)code;
                }
            }
            k += run;
        }
    }
    const int64_t *ts = b->i[sc->time_col];
    int64_t tmin = mt->staged_min, tmax = mt->staged_max;
    bool empty = start == 0;
    for (uint32_t k = 0; k < n; k++) {
        int64_t v = ts[rows ? rows[k] : k];
        if (empty || v < tmin)
            tmin = v;
        if (empty || v > tmax)
            tmax = v;
        empty = false;
    }
    mt->staged_min = tmin;
    mt->staged_max = tmax;
    mt->staged = start + n;
    atomic_fetch_add_explicit(&mt->bytes, bytes, memory_order_relaxed);
    return 0;
}

uint64_t memtable_staged_rows(const memtable *mt)
{
    return mt->staged;
}

void memtable_publish(memtable *mt)
{
    if (mt->staged == atomic_load_explicit(&mt->nrows, memory_order_relaxed))
        return;
    atomic_store_explicit(&mt->min_time, mt->staged_min, memory_order_relaxed);
    atomic_store_explicit(&mt->max_time, mt->staged_max, memory_order_relaxed);
    atomic_store_explicit(&mt->nrows, mt->staged, memory_order_release);
}

void memtable_unstage(memtable *mt)
{
    mt->staged = atomic_load_explicit(&mt->nrows, memory_order_relaxed);
    mt->staged_min = atomic_load_explicit(&mt->min_time, memory_order_relaxed);
    mt->staged_max = atomic_load_explicit(&mt->max_time, memory_order_relaxed);
}

int memtable_append(memtable *mt, const row_batch *b, const uint32_t *rows, uint32_t n,
                    strata_err *err)
{
    int rc = memtable_stage(mt, b, rows, n, err);
    if (rc == 0)
        memtable_publish(mt);
    return rc;
}

/* ---- flush: sort and write ------------------------------------------------------- */

static uint64_t float_key(double d)
{
    uint64_t b;
    memcpy(&b, &d, 8);
    return (b & (UINT64_C(1) << 63)) ? ~b : b | (UINT64_C(1) << 63);
}

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

/* Order-preserving 64-bit image of a row's value of sort column c. */
static inline uint64_t sort_image(const memtable *mt, int c, strata_type t, const uint32_t *remap,
                                  uint64_t row)
{
    uint64_t v = row_value_bits(mt, c, row);
    switch (t) {
    case STRATA_STRING: return remap[v];
    case STRATA_FLOAT64: {
        double dv;
        memcpy(&dv, &v, 8);
        return float_key(dv);
    }
    case STRATA_UINT64:
    case STRATA_BOOL: return v;
    default: return v ^ (UINT64_C(1) << 63);
    }
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

    /* Order rows. Each sort column's image, minus its minimum, needs bits_needed(range)
     * bits; consecutive columns are packed into one 64-bit key while they fit (the usual
     * few strings + time make a single key), and keys are radix-sorted least significant
     * first, each pass stable. */
    {
        uint64_t kmin[STRATA_MAX_COLUMNS];
        unsigned kbits[STRATA_MAX_COLUMNS];
        for (int k = 0; k < sc->norder; k++) {
            int c = sc->order_by[k];
            strata_type t = sc->cols[c].type;
            uint64_t lo = UINT64_MAX, hi = 0;
            for (uint64_t r = 0; r < nrows; r++) {
                uint64_t v = sort_image(mt, c, t, remap[c], r);
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
            kmin[k] = lo;
            kbits[k] = nrows ? bits_needed(hi - lo) : 0;
        }
        int k = sc->norder - 1;
        while (k >= 0) {
            /* Group [first, k] fits in 64 bits; column k is least significant. */
            int first = k;
            unsigned total = kbits[k];
            while (first > 0 && total + kbits[first - 1] <= 64) {
                first--;
                total += kbits[first];
            }
            if (total > 0) {
                for (uint64_t i = 0; i < nrows; i++) {
                    if ((i & 15) == 0 && i + 16 < nrows)
                        for (int q = first; q <= k; q++)
                            __builtin_prefetch(
                                mt->cols[sc->order_by[q]].chunks[perm[i + 16] / MEMTABLE_CHUNK_ROWS]);
                    uint64_t key_v = 0;
                    for (int q = first; q <= k; q++) {
                        int c = sc->order_by[q];
                        uint64_t v = sort_image(mt, c, sc->cols[c].type, remap[c], perm[i]) - kmin[q];
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
