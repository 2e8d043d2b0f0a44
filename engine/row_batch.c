/*
 * row_batch.c — growable columnar row batches. See row_batch.h.
 */
#include "engine/row_batch.h"

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
