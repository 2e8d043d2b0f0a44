/*
 * row_batch.c — growable columnar row batches. See row_batch.h.
 */
#include "engine/row_batch.h"

#include "engine/buf.h"

#include <stdlib.h>
#include <string.h>

static int batch_grow(row_batch *b, uint32_t want)
{
    if (want <= b->cap)
        return 0;
    uint32_t cap = b->cap ? b->cap : 64;
    while (cap < want)
        cap *= 2;
    const strata_schema *sc = b->schema;
    for (int c = 0; c < sc->ncols; c++) {
        strata_type t = sc->cols[c].type;
        if (strata_type_is_int(t)) {
            int64_t *p = realloc(b->i[c], sizeof *p * cap);
            if (!p)
                return STRATA_ENOMEM;
            b->i[c] = p;
        } else if (t == STRATA_FLOAT64) {
            double *p = realloc(b->f[c], sizeof *p * cap);
            if (!p)
                return STRATA_ENOMEM;
            b->f[c] = p;
        } else {
            row_batch_str *p = realloc(b->s[c], sizeof *p * cap);
            if (!p)
                return STRATA_ENOMEM;
            b->s[c] = p;
        }
    }
    b->cap = cap;
    return 0;
}

int row_batch_init(row_batch *b, const strata_schema *schema, uint32_t cap)
{
    memset(b, 0, sizeof *b);
    b->schema = schema;
    if (batch_grow(b, cap ? cap : 64) != 0) {
        row_batch_free(b);
        return STRATA_ENOMEM;
    }
    return 0;
}

void row_batch_free(row_batch *b)
{
    for (int c = 0; c < STRATA_MAX_COLUMNS; c++) {
        free(b->i[c]);
        free(b->f[c]);
        free(b->s[c]);
    }
    free(b->bytes);
    memset(b, 0, sizeof *b);
}

void row_batch_clear(row_batch *b)
{
    b->nrows = 0;
    b->nbytes = 0;
}

static int bytes_reserve(row_batch *b, uint64_t extra)
{
    if (b->nbytes + extra <= b->bytes_cap)
        return 0;
    uint64_t cap = b->bytes_cap ? b->bytes_cap : 4096;
    while (cap < b->nbytes + extra)
        cap *= 2;
    char *p = realloc(b->bytes, cap);
    if (!p)
        return STRATA_ENOMEM;
    b->bytes = p;
    b->bytes_cap = cap;
    return 0;
}

int64_t row_batch_add_row(row_batch *b)
{
    if (b->nrows == UINT32_MAX || batch_grow(b, b->nrows + 1) != 0)
        return -1;
    uint32_t r = b->nrows;
    const strata_schema *sc = b->schema;
    for (int c = 0; c < sc->ncols; c++) {
        const strata_column *col = &sc->cols[c];
        if (strata_type_is_int(col->type))
            b->i[c][r] = col->def_i;
        else if (col->type == STRATA_FLOAT64)
            b->f[c][r] = col->def_f;
        else {
            /* Defaults are stored once per row too, so every value is addressable the same way. */
            uint32_t len = (uint32_t)strnlen(col->def_s, sizeof col->def_s);
            if (bytes_reserve(b, len) != 0)
                return -1;
            if (len)
                memcpy(b->bytes + b->nbytes, col->def_s, len);
            b->s[c][r].off = b->nbytes;
            b->s[c][r].len = len;
            b->nbytes += len;
        }
    }
    b->nrows++;
    return r;
}

void row_batch_pop_row(row_batch *b)
{
    if (b->nrows > 0)
        b->nrows--;
}

int row_batch_set_str(row_batch *b, int col, uint32_t row, const char *p, uint32_t len)
{
    if (bytes_reserve(b, len) != 0)
        return STRATA_ENOMEM;
    if (len)
        memcpy(b->bytes + b->nbytes, p, len);
    b->s[col][row].off = b->nbytes;
    b->s[col][row].len = len;
    b->nbytes += len;
    return 0;
}

static uint64_t bytes_per_row(const strata_schema *sc)
{
    uint64_t per_row = 0;
    for (int c = 0; c < sc->ncols; c++)
        per_row += sc->cols[c].type == STRATA_STRING ? sizeof(row_batch_str) : 8;
    return per_row;
}

uint64_t row_batch_mem_bytes(const row_batch *b)
{
    return (uint64_t)b->cap * bytes_per_row(b->schema) + b->bytes_cap;
}

uint64_t row_batch_used_bytes(const row_batch *b)
{
    return (uint64_t)b->nrows * bytes_per_row(b->schema) + b->nbytes;
}

void row_batch_rebind(row_batch *b, const strata_schema *schema)
{
    row_batch_clear(b);
    b->schema = schema;
}

/* ---- the log form (row_batch.h) ----------------------------------------------------- */

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the log form copies arrays as they are in memory: little-endian hosts only"
#endif

int row_batch_encode(const row_batch *b, bytebuf *out)
{
    const strata_schema *sc = b->schema;
    uint64_t n = b->nrows, size = 8;
    for (int c = 0; c < sc->ncols; c++)
        size += 1 + n * (sc->cols[c].type == STRATA_STRING ? 4 : 8);
    for (int c = 0; c < sc->ncols; c++)
        if (sc->cols[c].type == STRATA_STRING)
            for (uint32_t r = 0; r < b->nrows; r++)
                size += b->s[c][r].len;
    if (!buf_reserve(out, size))
        return STRATA_ENOMEM;
    buf_put_u32(out, b->nrows);
    buf_put_u32(out, (uint32_t)sc->ncols);
    for (int c = 0; c < sc->ncols; c++) {
        strata_type t = sc->cols[c].type;
        buf_put_u8(out, (uint8_t)t);
        if (strata_type_is_int(t)) {
            buf_put(out, b->i[c], n * 8);
        } else if (t == STRATA_FLOAT64) {
            buf_put(out, b->f[c], n * 8);
        } else {
            uint8_t *p = out->data + out->len;
            for (uint32_t r = 0; r < b->nrows; r++)
                store_u32le(p + 4 * (size_t)r, b->s[c][r].len);
            out->len += n * 4;
            for (uint32_t r = 0; r < b->nrows; r++)
                buf_put(out, b->bytes + b->s[c][r].off, b->s[c][r].len);
        }
    }
    return out->oom ? STRATA_ENOMEM : 0;
}

int row_batch_decode(row_batch *b, const uint8_t *p, size_t len, strata_err *err)
{
    const strata_schema *sc = b->schema;
    cursor cur = cursor_make(p, len);
    uint32_t n = cursor_u32(&cur), ncols = cursor_u32(&cur);
    if (cur.bad || ncols != (uint32_t)sc->ncols)
        return strata_err_set(err, STRATA_ECORRUPT, "a logged batch of %u columns for a table of %d",
                              ncols, sc->ncols);
    if ((uint64_t)n * ncols > len)
        return strata_err_set(err, STRATA_ECORRUPT, "a logged batch of %u rows in %zu bytes", n, len);
    row_batch_clear(b);
    if (batch_grow(b, n) != 0)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    for (int c = 0; c < sc->ncols; c++) {
        strata_type t = sc->cols[c].type;
        uint8_t got = cursor_u8(&cur);
        if (got != (uint8_t)t)
            return strata_err_set(err, STRATA_ECORRUPT, "a logged batch's column %d is of type %u, "
                                  "the table's '%s' of type %u", c, got, sc->cols[c].name, (unsigned)t);
        if (strata_type_is_int(t) || t == STRATA_FLOAT64) {
            const uint8_t *v = cursor_take(&cur, (size_t)n * 8);
            if (!v)
                break;
            memcpy(strata_type_is_int(t) ? (void *)b->i[c] : (void *)b->f[c], v, (size_t)n * 8);
            continue;
        }
        const uint8_t *lens = cursor_take(&cur, (size_t)n * 4);
        if (!lens)
            break;
        uint64_t total = 0;
        for (uint32_t r = 0; r < n; r++)
            total += load_u32le(lens + 4 * (size_t)r);
        const uint8_t *bytes = total <= cursor_left(&cur) ? cursor_take(&cur, (size_t)total) : NULL;
        if (!bytes) {
            cur.bad = true;
            break;
        }
        if (bytes_reserve(b, total) != 0)
            return strata_err_set(err, STRATA_ENOMEM, "out of memory");
        memcpy(b->bytes + b->nbytes, bytes, (size_t)total);
        for (uint32_t r = 0; r < n; r++) {
            uint32_t l = load_u32le(lens + 4 * (size_t)r);
            b->s[c][r].off = b->nbytes;
            b->s[c][r].len = l;
            b->nbytes += l;
        }
    }
    if (cur.bad || cursor_left(&cur) != 0)
        return strata_err_set(err, STRATA_ECORRUPT, "a logged batch of %u rows is %s", n,
                              cur.bad ? "cut short" : "longer than its rows");
    b->nrows = n;
    return 0;
}
