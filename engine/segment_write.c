/*
 * segment_write.c — writes segment files (format: segment_format.h).
 *
 * The writer streams: each granule is encoded, compressed and appended to the file as
 * it arrives, so memory stays at one granule per column plus the footer and the string
 * bitmaps. Bitmaps are filled per granule by a counting sort of the codes (rows of one
 * code become one roaring add_many), which is what keeps index building cheap. The file
 * is created with O_EXCL, written through a 1 MiB buffer, fsynced before close; any
 * failure removes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/buf.h"
#include "engine/encode.h"
#include "engine/fs.h"
#include "engine/segment.h"
#include "engine/segment_format.h"

_Static_assert(SEGMENT_GRANULE_ROWS >= 1 && SEGMENT_GRANULE_ROWS <= SEGMENT_MAX_GRANULE_ROWS,
               "the granule size strata writes by default must be one the format allows");

typedef struct col_state {
    strata_type type;
    /* strings */
    bool have_dict;
    uint32_t dict_n;
    bytebuf dict_raw;              /* dictionary block raw bytes */
    roaring_bitmap_t **bitmaps;
    /* footer entries */
    segment_granule_meta *granules;
} col_state;

struct segment_writer {
    char *path;
    int fd;
    uint64_t offset; /* bytes written so far (file position after flushing out) */
    bytebuf out;         /* write buffer */
    strata_schema schema;
    segment_write_opts opts;
    compressor *z;
    bytebuf enc, comp;
    uint64_t *scratch;
    uint32_t *sort_rows;
    bool created; /* we made the file: abort removes it */
    uint64_t nrows;
    uint32_t ngranules, gcap;
    bool last_partial;
    int64_t min_time, max_time;
    col_state cols[STRATA_MAX_COLUMNS];
};

static int flush_out(segment_writer *w, strata_err *err)
{
    int rc = fs_write_all(w->fd, w->out.data, w->out.len);
    if (rc)
        return strata_err_set(err, STRATA_EIO, "%s: write: %s", w->path, strerror(-rc));
    w->out.len = 0;
    return 0;
}

static int emit(segment_writer *w, const void *p, size_t n, strata_err *err)
{
    if (w->out.len + n > (1u << 20)) {
        int rc = flush_out(w, err);
        if (rc)
            return rc;
    }
    if (n >= (1u << 20)) {
        bytebuf tmp = w->out;
        w->out = (bytebuf){(uint8_t *)p, n, n, false};
        int rc = flush_out(w, err);
        w->out = tmp;
        if (rc)
            return rc;
    } else {
        buf_put(&w->out, p, n);
        if (w->out.oom)
            return strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", w->path);
    }
    w->offset += n;
    return 0;
}

/* Compresses raw into a block at the current offset and fills ref. */
static int write_block(segment_writer *w, const void *raw, size_t raw_len, uint8_t encoding,
                       segment_block *ref, strata_err *err)
{
    if (raw_len > UINT32_MAX)
        return strata_err_set(err, STRATA_EINVAL, "%s: block of %zu bytes is too large", w->path,
                              raw_len);
    w->comp.len = 0;
    strata_codec used = compress_block(w->z, &w->comp, raw, raw_len, w->opts.codec);
    if (w->comp.oom)
        return strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", w->path);
    ref->offset = w->offset;
    ref->stored_len = (uint32_t)w->comp.len;
    ref->raw_len = (uint32_t)raw_len;
    ref->codec = (uint8_t)used;
    ref->encoding = encoding;
    ref->checksum = XXH3_64bits(w->comp.data, w->comp.len);
    return emit(w, w->comp.data, w->comp.len, err);
}

segment_writer *segment_writer_open(const char *path, const strata_schema *schema,
                                    const segment_write_opts *opts, strata_err *err)
{
    segment_writer *w = calloc(1, sizeof *w);
    if (!w) {
        strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    w->fd = -1;
    w->schema = *schema;
    if (opts)
        w->opts = *opts;
    else
        w->opts.codec = STRATA_CODEC_LZ4;
    if (w->opts.zstd_level == 0)
        w->opts.zstd_level = 3;
    if (w->opts.granule_rows == 0)
        w->opts.granule_rows = SEGMENT_GRANULE_ROWS;
    bool has_bytes = false;
    for (int c = 0; c < schema->ncols; c++)
        has_bytes |= schema->cols[c].type == STRATA_BYTES;
    if (w->opts.version == 0)
        w->opts.version = has_bytes ? SEGMENT_VERSION_BYTES : SEGMENT_VERSION;
    if (w->opts.version < SEGMENT_VERSION_MIN || w->opts.version > SEGMENT_VERSION_MAX ||
        (has_bytes && w->opts.version != SEGMENT_VERSION_BYTES)) {
        strata_err_set(err, STRATA_EINVAL, "%s: cannot write format version %u", path,
                       w->opts.version);
        free(w);
        return NULL;
    }
    if (w->opts.granule_rows > SEGMENT_MAX_GRANULE_ROWS) {
        strata_err_set(err, STRATA_EINVAL, "%s: granule_rows %u is over %u", path,
                       w->opts.granule_rows, SEGMENT_MAX_GRANULE_ROWS);
        free(w);
        return NULL;
    }
    w->min_time = 0;
    w->max_time = -1;
    w->path = strdup(path);
    w->z = compressor_create(w->opts.zstd_level);
    w->scratch = malloc(sizeof *w->scratch * w->opts.granule_rows);
    w->sort_rows = malloc(sizeof *w->sort_rows * w->opts.granule_rows);
    if (!w->path || !w->z || !w->scratch || !w->sort_rows) {
        strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (int c = 0; c < schema->ncols; c++)
        w->cols[c].type = schema->cols[c].type;
    w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        strata_err_set(err, STRATA_EIO, "%s: create: %s", path, strerror(errno));
        goto fail;
    }
    w->created = true;
    uint8_t header[SEGMENT_HEADER_SIZE];
    memcpy(header, SEGMENT_MAGIC, 8);
    store_u32le(header + 8, w->opts.version);
    store_u32le(header + 12, 0);
    if (emit(w, header, sizeof header, err) != 0)
        goto fail;
    return w;
fail:
    segment_writer_abort(w);
    return NULL;
}

int strata_str_cmp(strata_str a, strata_str b)
{
    uint32_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

int segment_writer_set_dict(segment_writer *w, int col, const strata_str *values, uint32_t n,
                            strata_err *err)
{
    if (col < 0 || col >= w->schema.ncols || w->cols[col].type != STRATA_STRING)
        return strata_err_set(err, STRATA_EINVAL, "%s: column %d is not a string column",
                              w->path, col);
    col_state *cs = &w->cols[col];
    if (cs->have_dict || w->ngranules > 0)
        return strata_err_set(err, STRATA_EINVAL, "%s: dictionary of '%s' set twice or late",
                              w->path, w->schema.cols[col].name);
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0 && strata_str_cmp(values[i - 1], values[i]) >= 0)
            return strata_err_set(err, STRATA_EINVAL,
                                  "%s: dictionary of '%s' is not sorted and unique at %u",
                                  w->path, w->schema.cols[col].name, i);
        total += values[i].len;
    }
    if (total > UINT32_MAX - 8 - 4 * (uint64_t)n)
        return strata_err_set(err, STRATA_EINVAL, "%s: dictionary of '%s' is over 4 GiB",
                              w->path, w->schema.cols[col].name);
    buf_put_u32(&cs->dict_raw, n);
    uint32_t end = 0;
    for (uint32_t i = 0; i < n; i++) {
        end += values[i].len;
        buf_put_u32(&cs->dict_raw, end);
    }
    for (uint32_t i = 0; i < n; i++)
        buf_put(&cs->dict_raw, values[i].ptr, values[i].len);
    cs->bitmaps = calloc(n ? n : 1, sizeof *cs->bitmaps);
    if (cs->dict_raw.oom || !cs->bitmaps)
        return strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", w->path);
    for (uint32_t i = 0; i < n; i++) {
        cs->bitmaps[i] = roaring_bitmap_create();
        if (!cs->bitmaps[i])
            return strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", w->path);
    }
    cs->dict_n = n;
    cs->have_dict = true;
    return 0;
}

/* Adds the rows of one granule to the per-code bitmaps (counting sort by code). */
static int index_codes(segment_writer *w, col_state *cs, const uint32_t *codes, uint32_t n,
                       uint32_t row0, strata_err *err)
{
    uint32_t k = cs->dict_n;
    uint32_t *count = calloc((size_t)k + 1, sizeof *count);
    if (!count)
        return strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", w->path);
    for (uint32_t i = 0; i < n; i++)
        count[codes[i] + 1]++;
    for (uint32_t c = 0; c < k; c++)
        count[c + 1] += count[c];
    /* count[c] is now the start of code c's rows in sort_rows. */
    for (uint32_t i = 0; i < n; i++)
        w->sort_rows[count[codes[i]]++] = row0 + i;
    uint32_t start = 0;
    for (uint32_t c = 0; c < k; c++) {
        uint32_t end = count[c];
        if (end > start)
            roaring_bitmap_add_many(cs->bitmaps[c], end - start, w->sort_rows + start);
        start = end;
    }
    free(count);
    return 0;
}

int segment_writer_add_granule(segment_writer *w, uint32_t n, const void *const *cols,
                               strata_err *err)
{
    const strata_schema *sc = &w->schema;
    if (n == 0 || n > w->opts.granule_rows)
        return strata_err_set(err, STRATA_EINVAL, "%s: granule of %u rows (1..%u allowed)",
                              w->path, n, w->opts.granule_rows);
    if (w->last_partial)
        return strata_err_set(err, STRATA_EINVAL, "%s: a granule after a partial granule",
                              w->path);
    if (w->nrows + n > SEGMENT_MAX_ROWS)
        return strata_err_set(err, STRATA_EINVAL, "%s: more than %u rows", w->path,
                              (unsigned)SEGMENT_MAX_ROWS);
    if (w->ngranules == w->gcap) {
        uint32_t cap = w->gcap ? w->gcap * 2 : 16;
        for (int c = 0; c < sc->ncols; c++) {
            segment_granule_meta *g = realloc(w->cols[c].granules, sizeof *g * cap);
            if (!g)
                return strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", w->path);
            w->cols[c].granules = g;
        }
        w->gcap = cap;
    }
    /* Check every column's codes before writing or indexing anything, so a refused
     * granule leaves no blocks in the file and no rows in the bitmaps. */
    for (int c = 0; c < sc->ncols; c++) {
        col_state *cs = &w->cols[c];
        if (cs->type != STRATA_STRING)
            continue;
        const uint32_t *codes = cols[c];
        if (!cs->have_dict)
            return strata_err_set(err, STRATA_EINVAL, "%s: no dictionary set for '%s'",
                                  w->path, sc->cols[c].name);
        for (uint32_t i = 0; i < n; i++)
            if (codes[i] >= cs->dict_n)
                return strata_err_set(err, STRATA_EINVAL,
                                      "%s: code %u of '%s' is outside its dictionary (%u)",
                                      w->path, codes[i], sc->cols[c].name, cs->dict_n);
    }
    bool aligned = w->opts.codec == STRATA_CODEC_ZSTD;
    uint32_t row0 = (uint32_t)w->nrows;
    for (int c = 0; c < sc->ncols; c++) {
        col_state *cs = &w->cols[c];
        segment_granule_meta *g = &cs->granules[w->ngranules];
        memset(g, 0, sizeof *g);
        w->enc.len = 0;
        if (strata_type_is_int(cs->type)) {
            const int64_t *v = cols[c];
            bool is_signed = cs->type != STRATA_UINT64;
            memcpy(w->scratch, v, sizeof *v * n);
            uint64_t lo = w->scratch[0], hi = w->scratch[0];
            for (uint32_t i = 1; i < n; i++) {
                uint64_t x = w->scratch[i];
                if (is_signed) {
                    lo = (int64_t)x < (int64_t)lo ? x : lo;
                    hi = (int64_t)x > (int64_t)hi ? x : hi;
                } else {
                    lo = x < lo ? x : lo;
                    hi = x > hi ? x : hi;
                }
            }
            g->min = lo;
            g->max = hi;
            encode_ints(&w->enc, w->scratch, n, is_signed, aligned);
            if (c == sc->time_col) {
                if (w->nrows == 0 || (int64_t)lo < w->min_time)
                    w->min_time = (int64_t)lo;
                if (w->nrows == 0 || (int64_t)hi > w->max_time)
                    w->max_time = (int64_t)hi;
            }
        } else if (cs->type == STRATA_BYTES) {
            const segment_bytes *v = cols[c];
            uint32_t lo = UINT32_MAX, hi = 0, prev = 0;
            buf_put_u8(&w->enc, SEGMENT_ENC_BYTES);
            buf_put_u32(&w->enc, n);
            for (uint32_t i = 0; i < n; i++) {
                if (v->end[i] < prev)
                    return strata_err_set(err, STRATA_EINVAL, "%s: '%s': value ends go backwards", w->path,
                                          sc->cols[c].name);
                uint32_t len = v->end[i] - prev;
                lo = len < lo ? len : lo;
                hi = len > hi ? len : hi;
                prev = v->end[i];
                buf_put_u32(&w->enc, v->end[i]);
            }
            buf_put(&w->enc, v->data, prev);
            g->min = lo;
            g->max = hi;
        } else if (cs->type == STRATA_FLOAT64) {
            const double *v = cols[c];
            double lo = INFINITY, hi = -INFINITY;
            for (uint32_t i = 0; i < n; i++) {
                if (isnan(v[i]))
                    g->flags |= SEGMENT_GRANULE_HAS_NAN;
                else {
                    lo = v[i] < lo ? v[i] : lo;
                    hi = v[i] > hi ? v[i] : hi;
                }
            }
            memcpy(&g->min, &lo, 8);
            memcpy(&g->max, &hi, 8);
            encode_floats(&w->enc, v, n, aligned, w->scratch);
        } else {
            const uint32_t *codes = cols[c]; /* checked above */
            uint32_t lo = UINT32_MAX, hi = 0;
            for (uint32_t i = 0; i < n; i++) {
                w->scratch[i] = codes[i];
                lo = codes[i] < lo ? codes[i] : lo;
                hi = codes[i] > hi ? codes[i] : hi;
            }
            g->min = lo;
            g->max = hi;
            encode_ints(&w->enc, w->scratch, n, false, aligned);
            int rc = index_codes(w, cs, codes, n, row0, err);
            if (rc)
                return rc;
        }
        if (w->enc.oom)
            return strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", w->path);
        int rc = write_block(w, w->enc.data, w->enc.len, w->enc.data[0], &g->block, err);
        if (rc)
            return rc;
    }
    w->ngranules++;
    w->nrows += n;
    if (n < w->opts.granule_rows)
        w->last_partial = true;
    return 0;
}

static void put_ref(bytebuf *f, const segment_block *r)
{
    buf_put_u64(f, r->offset);
    buf_put_u32(f, r->stored_len);
    buf_put_u32(f, r->raw_len);
    buf_put_u8(f, r->codec);
    buf_put_u8(f, r->encoding);
    buf_put_u64(f, r->checksum);
}

static void writer_free(segment_writer *w)
{
    for (int c = 0; c < STRATA_MAX_COLUMNS; c++) {
        col_state *cs = &w->cols[c];
        if (cs->bitmaps)
            for (uint32_t i = 0; i < cs->dict_n; i++)
                if (cs->bitmaps[i])
                    roaring_bitmap_free(cs->bitmaps[i]);
        free(cs->bitmaps);
        buf_free(&cs->dict_raw);
        free(cs->granules);
    }
    compressor_free(w->z);
    buf_free(&w->out);
    buf_free(&w->enc);
    buf_free(&w->comp);
    free(w->scratch);
    free(w->sort_rows);
    free(w->path);
    free(w);
}

int segment_writer_finish(segment_writer *w, segment_info *info, strata_err *err)
{
    const strata_schema *sc = &w->schema;
    segment_block dict_ref[STRATA_MAX_COLUMNS], bm_ref[STRATA_MAX_COLUMNS];
    bytebuf f = {0}, bm = {0};
    int rc = 0;
    for (int c = 0; c < sc->ncols; c++) {
        col_state *cs = &w->cols[c];
        if (cs->type != STRATA_STRING)
            continue;
        if (!cs->have_dict) {
            /* A string column of a 0-row segment may have no dictionary: write an empty one. */
            if (w->nrows != 0) {
                rc = strata_err_set(err, STRATA_EINVAL, "%s: no dictionary set for '%s'",
                                    w->path, sc->cols[c].name);
                goto fail;
            }
            if ((rc = segment_writer_set_dict(w, c, NULL, 0, err)) != 0)
                goto fail;
        }
        if ((rc = write_block(w, cs->dict_raw.data, cs->dict_raw.len, SEGMENT_ENC_DICT, &dict_ref[c],
                              err)) != 0)
            goto fail;
        bm.len = 0;
        buf_put_u32(&bm, cs->dict_n);
        for (uint32_t i = 0; i < cs->dict_n; i++) {
            roaring_bitmap_run_optimize(cs->bitmaps[i]);
            buf_put_u32(&bm, (uint32_t)roaring_bitmap_portable_size_in_bytes(cs->bitmaps[i]));
        }
        for (uint32_t i = 0; i < cs->dict_n; i++) {
            size_t sz = roaring_bitmap_portable_size_in_bytes(cs->bitmaps[i]);
            if (!buf_reserve(&bm, sz))
                break;
            bm.len += roaring_bitmap_portable_serialize(cs->bitmaps[i], (char *)bm.data + bm.len);
        }
        if (bm.oom) {
            rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", w->path);
            goto fail;
        }
        if ((rc = write_block(w, bm.data, bm.len, SEGMENT_ENC_BITMAP, &bm_ref[c], err)) != 0)
            goto fail;
    }

    buf_put_u64(&f, w->nrows);
    buf_put_u32(&f, w->opts.granule_rows);
    buf_put_u32(&f, w->ngranules);
    buf_put_u64(&f, (uint64_t)w->min_time);
    buf_put_u64(&f, (uint64_t)w->max_time);
    buf_put_u16(&f, (uint16_t)sc->ncols);
    buf_put_u16(&f, (uint16_t)sc->time_col);
    buf_put_u16(&f, (uint16_t)sc->norder);
    for (int i = 0; i < sc->norder; i++)
        buf_put_u16(&f, (uint16_t)sc->order_by[i]);
    for (int c = 0; c < sc->ncols; c++) {
        size_t len = strlen(sc->cols[c].name);
        buf_put_u8(&f, (uint8_t)sc->cols[c].type);
        buf_put_u8(&f, (uint8_t)len);
        buf_put(&f, sc->cols[c].name, len);
    }
    for (int c = 0; c < sc->ncols; c++) {
        col_state *cs = &w->cols[c];
        bool has_dict = cs->type == STRATA_STRING;
        buf_put_u8(&f, has_dict ? SEGMENT_COL_HAS_DICT : 0);
        if (has_dict) {
            put_ref(&f, &dict_ref[c]);
            put_ref(&f, &bm_ref[c]);
        }
        for (uint32_t g = 0; g < w->ngranules; g++) {
            put_ref(&f, &cs->granules[g].block);
            buf_put_u64(&f, cs->granules[g].min);
            buf_put_u64(&f, cs->granules[g].max);
            buf_put_u8(&f, cs->granules[g].flags);
        }
    }
    if (f.oom) {
        rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", w->path);
        goto fail;
    }
    uint8_t trailer[SEGMENT_TRAILER_SIZE];
    store_u64le(trailer, w->offset);
    store_u64le(trailer + 8, f.len);
    store_u64le(trailer + 16, XXH3_64bits(f.data, f.len));
    store_u32le(trailer + 24, w->opts.version);
    memcpy(trailer + 28, SEGMENT_TRAILER_MAGIC, 4);
    if ((rc = emit(w, f.data, f.len, err)) != 0 || (rc = emit(w, trailer, sizeof trailer, err)) != 0 ||
        (rc = flush_out(w, err)) != 0)
        goto fail;
    if (fsync(w->fd) != 0) {
        rc = strata_err_set(err, STRATA_EIO, "%s: fsync: %s", w->path, strerror(errno));
        goto fail;
    }
    if (close(w->fd) != 0) {
        w->fd = -1;
        rc = strata_err_set(err, STRATA_EIO, "%s: close: %s", w->path, strerror(errno));
        goto fail;
    }
    w->fd = -1;
    if (info) {
        info->nrows = w->nrows;
        info->bytes = w->offset;
        info->min_time = w->min_time;
        info->max_time = w->max_time;
    }
    buf_free(&f);
    buf_free(&bm);
    writer_free(w);
    return 0;
fail:
    buf_free(&f);
    buf_free(&bm);
    segment_writer_abort(w);
    return rc;
}

void segment_writer_abort(segment_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->created)
        unlink(w->path);
    writer_free(w);
}
