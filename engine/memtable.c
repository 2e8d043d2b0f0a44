/*
 * memtable.c — append-only chunked columns with lock-free readers: create, stage and
 * publish rows, read them, count references. See memtable.h for the concurrency
 * contract, memtable_internal.h for the layout; writing a memtable out as a segment is
 * memtable_flush.c's job.
 *
 * Column chunks come from a bounded process-wide pool that freed memtables refill, and
 * strings are interned per column on the writer's side only (readers look codes up in
 * entries that never move once published).
 */
#include "engine/memtable.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL /* interning hashes short strings: inlining matters */
#include <xxhash.h>

#include "engine/fault.h"
#include "engine/memtable_internal.h"

#define DICT_CHUNK 4096
#define ARENA_BLOCK (64 * 1024)

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
