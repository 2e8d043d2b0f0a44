/*
 * dvec.c — delete vectors as copy-on-write chunked bitsets (see dvec.h).
 *
 * A dvec is a reference count, the rows set, and an array of chunk pointers; chunk i holds
 * the bits of rows [i * 65536, (i + 1) * 65536) as 1,024 words, or is NULL when none of them
 * is set. Chunks carry their own reference count: a new version takes a reference on every
 * chunk it shares and copies the ones it changes. Nothing is ever written in a chunk or a
 * dvec after it was returned, so readers need no synchronization beyond the atomic counts.
 */
#include "engine/dvec.h"

#include <roaring/roaring.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BITS 65536u
#define CHUNK_WORDS (CHUNK_BITS / 64)

typedef struct dv_chunk {
    _Atomic uint32_t refs;
    uint32_t count;
    uint64_t w[CHUNK_WORDS];
} dv_chunk;

struct dvec {
    _Atomic uint32_t refs;
    uint32_t nchunks;
    uint64_t count;
    dv_chunk *chunks[];
};

static void chunk_unref(dv_chunk *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1)
        free(c);
}

void dvec_ref(dvec *d)
{
    if (d)
        atomic_fetch_add(&d->refs, 1);
}

void dvec_unref(dvec *d)
{
    if (!d || atomic_fetch_sub(&d->refs, 1) != 1)
        return;
    for (uint32_t i = 0; i < d->nchunks; i++)
        chunk_unref(d->chunks[i]);
    free(d);
}

uint64_t dvec_count(const dvec *d)
{
    return d ? d->count : 0;
}

bool dvec_test(const dvec *d, uint64_t row)
{
    if (!d)
        return false;
    uint64_t c = row / CHUNK_BITS;
    if (c >= d->nchunks || !d->chunks[c])
        return false;
    uint32_t b = (uint32_t)(row % CHUNK_BITS);
    return (d->chunks[c]->w[b / 64] >> (b % 64)) & 1;
}

void dvec_mask(const dvec *d, uint64_t r0, uint32_t n, uint8_t *mask)
{
    if (!d || d->count == 0)
        return;
    uint64_t end = r0 + n;
    /* word by word over [r0, end), visiting only the set bits (a few % of a block) */
    for (uint64_t wstart = r0 & ~UINT64_C(63); wstart < end; wstart += 64) {
        uint64_t c = wstart / CHUNK_BITS;
        if (c >= d->nchunks)
            return;
        const dv_chunk *ch = d->chunks[c];
        if (!ch) {
            wstart = (c + 1) * CHUNK_BITS - 64; /* the next chunk */
            continue;
        }
        uint64_t w = ch->w[(wstart % CHUNK_BITS) / 64];
        if (wstart < r0)
            w &= ~UINT64_C(0) << (r0 - wstart);
        if (end - wstart < 64)
            w &= (UINT64_C(1) << (end - wstart)) - 1;
        while (w) {
            mask[wstart + (uint64_t)__builtin_ctzll(w) - r0] = 0;
            w &= w - 1;
        }
    }
}

void dvec_each(const dvec *d, void (*fn)(uint64_t row, void *arg), void *arg)
{
    if (!d)
        return;
    for (uint32_t c = 0; c < d->nchunks; c++) {
        const dv_chunk *ch = d->chunks[c];
        if (!ch)
            continue;
        for (uint32_t wi = 0; wi < CHUNK_WORDS; wi++) {
            uint64_t w = ch->w[wi];
            while (w) {
                int b = __builtin_ctzll(w);
                fn((uint64_t)c * CHUNK_BITS + wi * 64 + (uint64_t)b, arg);
                w &= w - 1;
            }
        }
    }
}

static dvec *dvec_alloc(uint32_t nchunks)
{
    dvec *d = calloc(1, sizeof *d + sizeof(dv_chunk *) * (nchunks ? nchunks : 1));
    if (d) {
        atomic_init(&d->refs, 1);
        d->nchunks = nchunks;
    }
    return d;
}

int dvec_with_rows(const dvec *d, const uint64_t *rows, uint64_t n, dvec **out, strata_err *err)
{
    *out = NULL;
    if (n == 0) {
        dvec_ref((dvec *)d);
        *out = (dvec *)d;
        return 0;
    }
    uint64_t maxc = 0;
    for (uint64_t i = 0; i < n; i++)
        if (rows[i] / CHUNK_BITS > maxc)
            maxc = rows[i] / CHUNK_BITS;
    uint32_t nch = (uint32_t)maxc + 1;
    if (d && d->nchunks > nch)
        nch = d->nchunks;
    dvec *nd = dvec_alloc(nch);
    bool *own = calloc(nch, 1); /* chunks this version copied (may write) */
    if (!nd || !own) {
        free(nd);
        free(own);
        return strata_err_set(err, STRATA_ENOMEM, "out of memory for a delete vector");
    }
    if (d) {
        for (uint32_t c = 0; c < d->nchunks; c++)
            if ((nd->chunks[c] = d->chunks[c]) != NULL)
                atomic_fetch_add(&nd->chunks[c]->refs, 1);
        nd->count = d->count;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint32_t c = (uint32_t)(rows[i] / CHUNK_BITS), b = (uint32_t)(rows[i] % CHUNK_BITS);
        if (!own[c]) {
            dv_chunk *nc = malloc(sizeof *nc);
            if (!nc) {
                free(own);
                dvec_unref(nd);
                return strata_err_set(err, STRATA_ENOMEM, "out of memory for a delete vector");
            }
            if (nd->chunks[c])
                memcpy(nc, nd->chunks[c], sizeof *nc);
            else
                memset(nc, 0, sizeof *nc);
            atomic_init(&nc->refs, 1);
            chunk_unref(nd->chunks[c]);
            nd->chunks[c] = nc;
            own[c] = true;
        }
        dv_chunk *ch = nd->chunks[c];
        uint64_t bit = UINT64_C(1) << (b % 64);
        if (!(ch->w[b / 64] & bit)) {
            ch->w[b / 64] |= bit;
            ch->count++;
            nd->count++;
        }
    }
    free(own);
    *out = nd;
    return 0;
}

typedef struct ser_ctx {
    roaring_bitmap_t *r;
} ser_ctx;

static void ser_add(uint64_t row, void *arg)
{
    roaring_bitmap_add(((ser_ctx *)arg)->r, (uint32_t)row);
}

int dvec_serialize(const dvec *d, const uint64_t *skip, uint64_t nskip, bytebuf *out, strata_err *err)
{
    roaring_bitmap_t *r = roaring_bitmap_create();
    if (!r)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory for a delete vector");
    ser_ctx cx = {r};
    dvec_each(d, ser_add, &cx);
    for (uint64_t i = 0; i < nskip; i++)
        roaring_bitmap_remove(r, (uint32_t)skip[i]);
    roaring_bitmap_run_optimize(r);
    size_t sz = roaring_bitmap_portable_size_in_bytes(r);
    if (!buf_reserve(out, sz)) {
        roaring_bitmap_free(r);
        return strata_err_set(err, STRATA_ENOMEM, "out of memory for a delete vector");
    }
    roaring_bitmap_portable_serialize(r, (char *)out->data + out->len);
    out->len += sz;
    roaring_bitmap_free(r);
    return 0;
}

typedef struct de_ctx {
    uint64_t *rows;
    uint64_t n;
} de_ctx;

static bool de_add(uint32_t v, void *arg)
{
    de_ctx *cx = arg;
    cx->rows[cx->n++] = v;
    return true;
}

int dvec_deserialize(const void *p, uint64_t len, uint64_t max_rows, dvec **out, strata_err *err)
{
    *out = NULL;
    if (len == 0 || roaring_bitmap_portable_deserialize_size(p, len) != len)
        return strata_err_set(err, STRATA_ECORRUPT, "delete vector: not a roaring bitmap of %llu bytes",
                              (unsigned long long)len);
    roaring_bitmap_t *r = roaring_bitmap_portable_deserialize_safe(p, len);
    if (!r)
        return strata_err_set(err, STRATA_ECORRUPT, "delete vector: not a roaring bitmap");
    uint64_t n = roaring_bitmap_get_cardinality(r);
    uint32_t top = n ? roaring_bitmap_maximum(r) : 0;
    if (n && top >= max_rows) {
        roaring_bitmap_free(r);
        return strata_err_set(err, STRATA_ECORRUPT, "delete vector: row %u past the segment's %llu rows",
                              top, (unsigned long long)max_rows);
    }
    de_ctx cx = {malloc(sizeof(uint64_t) * (n ? n : 1)), 0};
    if (!cx.rows) {
        roaring_bitmap_free(r);
        return strata_err_set(err, STRATA_ENOMEM, "out of memory for a delete vector");
    }
    roaring_iterate(r, de_add, &cx);
    roaring_bitmap_free(r);
    int rc = dvec_with_rows(NULL, cx.rows, cx.n, out, err);
    free(cx.rows);
    return rc;
}
