/*
 * segment_read.c — opens, checks and decodes segment files (format: segment_format.h).
 * Predicates and pruning over an open segment are segment_prune.c's.
 *
 * Open reads the header, trailer and footer (checksummed), validates every field and
 * block reference against the file size before allocating anything sized by them, then
 * loads each string column's dictionary and bitmap blocks (checksummed, sorted order and
 * bitmap partition checked). Data blocks are read with pread on demand, so a handle is
 * shared by all query threads; each thread brings its own segment_scratch.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "engine/buf.h"
#include "engine/encode.h"
#include "engine/segment.h"
#include "engine/segment_format.h"

typedef struct col_state {
    segment_granule_meta *granules;
    /* strings */
    segment_block dict_ref, bm_ref;
    uint32_t dict_n;
    uint8_t *dict_raw; /* the decompressed dictionary block */
    const uint32_t *ends;
    const char *bytes;
    roaring_bitmap_t **bitmaps;
} col_state;

struct segment {
    char *path;
    int fd;
    uint64_t file_bytes;
    uint64_t footer_off;
    uint32_t version;
    strata_schema schema;
    uint64_t nrows;
    uint32_t granule_rows, ngranules;
    int64_t min_time, max_time;
    segment_granule_meta *granule_mem;
    col_state cols[STRATA_MAX_COLUMNS];
};

static int pread_full(int fd, void *p, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)p + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return STRATA_ECORRUPT; /* file shorter than its footer says */
        done += (size_t)r;
    }
    return 0;
}

static void read_ref(cursor *c, segment_block *r)
{
    r->offset = cursor_u64(c);
    r->stored_len = cursor_u32(c);
    r->raw_len = cursor_u32(c);
    r->codec = cursor_u8(c);
    r->encoding = cursor_u8(c);
    r->checksum = cursor_u64(c);
}

static bool ref_ok(const segment *s, const segment_block *r, uint64_t max_raw)
{
    return r->offset >= SEGMENT_HEADER_SIZE && r->offset <= s->footer_off &&
           r->stored_len <= s->footer_off - r->offset && r->raw_len <= max_raw &&
           r->codec <= STRATA_CODEC_ZSTD && (r->codec != STRATA_CODEC_NONE || r->stored_len == r->raw_len);
}

static bool grow(void **p, size_t *cap, size_t want)
{
    if (want <= *cap)
        return true;
    void *q = realloc(*p, want);
    if (!q)
        return false;
    *p = q;
    *cap = want;
    return true;
}

void segment_scratch_free(segment_scratch *sc)
{
    free(sc->stored);
    free(sc->raw);
    free(sc->u64);
    compressor_free(sc->z);
    memset(sc, 0, sizeof *sc);
}

static const char *col_name(const segment *s, int col)
{
    return s->schema.cols[col].name;
}

/* Reads block ref into sc->raw (raw_len bytes plus ENCODE_PAD zero bytes), checking its
 * checksum and decompression. what: "granule 3" / "dictionary" / "bitmap index". */
static int load_block(const segment *s, int col, const char *what, const segment_block *r,
                      segment_scratch *sc, strata_err *err)
{
    if (!sc->z && !(sc->z = compressor_create(3)))
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    if (!grow((void **)&sc->stored, &sc->stored_cap, (size_t)r->stored_len + 1))
        return strata_err_set(err, STRATA_ENOMEM, "%s: column '%s' %s: out of memory", s->path,
                              col_name(s, col), what);
    int rc = pread_full(s->fd, sc->stored, r->stored_len, r->offset);
    if (rc == STRATA_ECORRUPT)
        return strata_err_set(err, STRATA_ECORRUPT,
                              "%s: column '%s' %s: block at offset %" PRIu64 " is cut short",
                              s->path, col_name(s, col), what, r->offset);
    if (rc)
        return strata_err_set(err, STRATA_EIO, "%s: column '%s' %s: read: %s", s->path,
                              col_name(s, col), what, strerror(-rc));
    uint64_t sum = XXH3_64bits(sc->stored, r->stored_len);
    if (sum != r->checksum)
        return strata_err_set(err, STRATA_ECORRUPT,
                              "%s: column '%s' %s: checksum mismatch in block at offset %" PRIu64
                              " (stored %016" PRIx64 ", computed %016" PRIx64 ")",
                              s->path, col_name(s, col), what, r->offset, r->checksum, sum);
    /* raw_len is only a claim: before allocating it, check that the stored bytes can
     * decompress to that much (LZ4 expands at most 255 times; a zstd frame as written
     * here records its content size). */
    if ((r->codec == STRATA_CODEC_LZ4 && r->raw_len > (uint64_t)r->stored_len * 255 + 64) ||
        (r->codec == STRATA_CODEC_ZSTD &&
         ZSTD_getFrameContentSize(sc->stored, r->stored_len) != r->raw_len))
        return strata_err_set(err, STRATA_ECORRUPT,
                              "%s: column '%s' %s: block at offset %" PRIu64
                              " of %u bytes cannot decompress (%s) to the %u bytes it claims",
                              s->path, col_name(s, col), what, r->offset, r->stored_len,
                              compress_codec_name((strata_codec)r->codec), r->raw_len);
    if (!grow((void **)&sc->raw, &sc->raw_cap, (size_t)r->raw_len + ENCODE_PAD))
        return strata_err_set(err, STRATA_ENOMEM, "%s: column '%s' %s: out of memory", s->path,
                              col_name(s, col), what);
    if (decompress_block(sc->z, (strata_codec)r->codec, sc->stored, r->stored_len, sc->raw,
                         r->raw_len) != 0)
        return strata_err_set(err, STRATA_ECORRUPT,
                              "%s: column '%s' %s: block at offset %" PRIu64
                              " does not decompress (%s) to %u bytes",
                              s->path, col_name(s, col), what, r->offset,
                              compress_codec_name((strata_codec)r->codec), r->raw_len);
    memset(sc->raw + r->raw_len, 0, ENCODE_PAD);
    return 0;
}

static int load_dict(segment *s, int c, segment_scratch *sc, strata_err *err)
{
    col_state *col = &s->cols[c];
    int rc = load_block(s, c, "dictionary", &col->dict_ref, sc, err);
    if (rc)
        return rc;
    uint32_t raw_len = col->dict_ref.raw_len;
    cursor cur = cursor_make(sc->raw, raw_len);
    uint32_t n = cursor_u32(&cur);
    if (cur.bad || n > (raw_len - 4) / 4)
        return strata_err_set(err, STRATA_ECORRUPT,
                              "%s: column '%s' dictionary: count %u does not fit its block",
                              s->path, col_name(s, c), n);
    col->dict_raw = malloc((size_t)raw_len + 1);
    if (!col->dict_raw)
        return strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", s->path);
    memcpy(col->dict_raw, sc->raw, raw_len);
    col->dict_n = n;
    col->ends = (const uint32_t *)(col->dict_raw + 4);
    col->bytes = (const char *)(col->dict_raw + 4 + 4 * (size_t)n);
    uint64_t bytes_len = raw_len - 4 - 4 * (uint64_t)n;
    uint32_t prev = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t e = col->ends[i];
        if (e < prev || e > bytes_len)
            return strata_err_set(err, STRATA_ECORRUPT,
                                  "%s: column '%s' dictionary: value %u ends out of bounds",
                                  s->path, col_name(s, c), i);
        prev = e;
    }
    if (prev != bytes_len)
        return strata_err_set(err, STRATA_ECORRUPT,
                              "%s: column '%s' dictionary: %" PRIu64 " stray bytes", s->path,
                              col_name(s, c), bytes_len - prev);
    for (uint32_t i = 1; i < n; i++)
        if (strata_str_cmp(segment_dict_value(s, c, i - 1), segment_dict_value(s, c, i)) >= 0)
            return strata_err_set(err, STRATA_ECORRUPT,
                                  "%s: column '%s' dictionary: values %u and %u out of order",
                                  s->path, col_name(s, c), i - 1, i);

    /* Bitmap index. */
    if ((rc = load_block(s, c, "bitmap index", &col->bm_ref, sc, err)) != 0)
        return rc;
    cur = cursor_make(sc->raw, col->bm_ref.raw_len);
    uint32_t bn = cursor_u32(&cur);
    if (cur.bad || bn != n || (uint64_t)n * 4 > cursor_left(&cur))
        return strata_err_set(err, STRATA_ECORRUPT,
                              "%s: column '%s' bitmap index: %u bitmaps for %u values", s->path,
                              col_name(s, c), bn, n);
    col->bitmaps = calloc(n ? n : 1, sizeof *col->bitmaps);
    if (!col->bitmaps)
        return strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", s->path);
    const uint8_t *sizes = cursor_take(&cur, (size_t)n * 4);
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t sz = load_u32le(sizes + 4 * (size_t)i);
        const uint8_t *p = cursor_take(&cur, sz);
        if (!p)
            return strata_err_set(err, STRATA_ECORRUPT,
                                  "%s: column '%s' bitmap index: bitmap %u overruns its block",
                                  s->path, col_name(s, c), i);
        if (roaring_bitmap_portable_deserialize_size((const char *)p, sz) != sz ||
            !(col->bitmaps[i] = roaring_bitmap_portable_deserialize_safe((const char *)p, sz)))
            return strata_err_set(err, STRATA_ECORRUPT,
                                  "%s: column '%s' bitmap index: bitmap %u is malformed", s->path,
                                  col_name(s, c), i);
        uint64_t card = roaring_bitmap_get_cardinality(col->bitmaps[i]);
        if (card && roaring_bitmap_maximum(col->bitmaps[i]) >= s->nrows)
            return strata_err_set(err, STRATA_ECORRUPT,
                                  "%s: column '%s' bitmap index: bitmap %u names rows past the "
                                  "end",
                                  s->path, col_name(s, c), i);
        total += card;
    }
    if (cursor_left(&cur) != 0 || total != s->nrows)
        return strata_err_set(err, STRATA_ECORRUPT,
                              "%s: column '%s' bitmap index: covers %" PRIu64 " rows of %" PRIu64,
                              s->path, col_name(s, c), total, s->nrows);
    return 0;
}

static bool encoding_fits(strata_type t, uint8_t enc)
{
    if (t == STRATA_FLOAT64)
        return enc == ENC_FLOAT_CONST || enc == ENC_FLOAT_DECIMAL || enc == ENC_FLOAT_SHUFFLE;
    if (t == STRATA_BYTES)
        return enc == SEGMENT_ENC_BYTES;
    return enc >= ENC_INT_CONST && enc <= ENC_INT_DOD;
}

static int parse_footer(segment *s, const uint8_t *f, uint64_t flen, strata_err *err)
{
    cursor c = cursor_make(f, flen);
    strata_schema *sc = &s->schema;
    schema_init(sc);
    s->nrows = cursor_u64(&c);
    s->granule_rows = cursor_u32(&c);
    s->ngranules = cursor_u32(&c);
    s->min_time = (int64_t)cursor_u64(&c);
    s->max_time = (int64_t)cursor_u64(&c);
    sc->ncols = cursor_u16(&c);
    sc->time_col = cursor_u16(&c);
    sc->norder = cursor_u16(&c);
    if (c.bad)
        goto short_footer;
    if (s->nrows >= SEGMENT_MAX_ROWS || s->granule_rows < 1 ||
        s->granule_rows > SEGMENT_MAX_GRANULE_ROWS ||
        s->ngranules != (s->nrows + s->granule_rows - 1) / s->granule_rows)
        return strata_err_set(err, STRATA_ECORRUPT,
                              "%s: footer: %" PRIu64 " rows in %u granules of %u rows do not agree",
                              s->path, s->nrows, s->ngranules, s->granule_rows);
    if (sc->ncols < 1 || sc->ncols > STRATA_MAX_COLUMNS || sc->time_col >= sc->ncols ||
        sc->norder > sc->ncols)
        return strata_err_set(err, STRATA_ECORRUPT,
                              "%s: footer: %d columns, time column %d, %d sort columns", s->path,
                              sc->ncols, sc->time_col, sc->norder);
    for (int i = 0; i < sc->norder; i++) {
        sc->order_by[i] = cursor_u16(&c);
        if (sc->order_by[i] >= sc->ncols)
            return strata_err_set(err, STRATA_ECORRUPT, "%s: footer: bad order_by column",
                                  s->path);
    }
    for (int i = 0; i < sc->ncols; i++) {
        strata_column *col = &sc->cols[i];
        col->type = (strata_type)cursor_u8(&c);
        uint8_t len = cursor_u8(&c);
        const uint8_t *name = cursor_take(&c, len);
        if (c.bad)
            goto short_footer;
        if (!strata_type_name(col->type) || len == 0 || len >= STRATA_NAME_MAX)
            return strata_err_set(err, STRATA_ECORRUPT,
                                  "%s: footer: column %d has type %d and a %u-byte name", s->path,
                                  i, (int)col->type, len);
        if (col->type == STRATA_BYTES && s->version != SEGMENT_VERSION_BYTES)
            return strata_err_set(err, STRATA_ECORRUPT,
                                  "%s: footer: column %d is bytes in a version-%u file (only version %u has them)",
                                  s->path, i, s->version, SEGMENT_VERSION_BYTES);
        memcpy(col->name, name, len);
        col->name[len] = 0;
        if (memchr(col->name, 0, len))
            return strata_err_set(err, STRATA_ECORRUPT, "%s: footer: column %d name has NUL",
                                  s->path, i);
    }
    if (sc->cols[sc->time_col].type != STRATA_TIMESTAMP)
        return strata_err_set(err, STRATA_ECORRUPT, "%s: footer: time column is not a timestamp",
                              s->path);
    /* Every granule entry takes 43 bytes: refuse counts the footer cannot hold before
     * allocating for them. */
    if ((uint64_t)s->ngranules * (uint64_t)sc->ncols * 43 > cursor_left(&c))
        goto short_footer;
    s->granule_mem = calloc((size_t)s->ngranules * sc->ncols + 1, sizeof *s->granule_mem);
    if (!s->granule_mem)
        return strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", s->path);
    uint64_t max_data_raw = 32 + (uint64_t)s->granule_rows * 8;
    for (int i = 0; i < sc->ncols; i++) {
        col_state *col = &s->cols[i];
        strata_type t = sc->cols[i].type;
        col->granules = s->granule_mem + (size_t)i * s->ngranules;
        uint8_t flags = cursor_u8(&c);
        if (flags != (t == STRATA_STRING ? SEGMENT_COL_HAS_DICT : 0))
            return strata_err_set(err, STRATA_ECORRUPT, "%s: footer: column '%s' flags %u",
                                  s->path, col_name(s, i), flags);
        if (t == STRATA_STRING) {
            read_ref(&c, &col->dict_ref);
            read_ref(&c, &col->bm_ref);
            if (c.bad)
                goto short_footer;
            if (!ref_ok(s, &col->dict_ref, UINT32_MAX - ENCODE_PAD) ||
                !ref_ok(s, &col->bm_ref, UINT32_MAX - ENCODE_PAD) || col->dict_ref.raw_len < 4 ||
                col->dict_ref.encoding != SEGMENT_ENC_DICT || col->bm_ref.encoding != SEGMENT_ENC_BITMAP)
                return strata_err_set(err, STRATA_ECORRUPT,
                                      "%s: footer: column '%s' dictionary or bitmap reference is "
                                      "out of bounds",
                                      s->path, col_name(s, i));
        }
        for (uint32_t g = 0; g < s->ngranules; g++) {
            segment_granule_meta *gr = &col->granules[g];
            read_ref(&c, &gr->block);
            gr->min = cursor_u64(&c);
            gr->max = cursor_u64(&c);
            gr->flags = cursor_u8(&c);
            if (c.bad)
                goto short_footer;
            if (!ref_ok(s, &gr->block, t == STRATA_BYTES ? UINT32_MAX - ENCODE_PAD : max_data_raw) ||
                !encoding_fits(t, gr->block.encoding) ||
                gr->flags > SEGMENT_GRANULE_HAS_NAN)
                return strata_err_set(err, STRATA_ECORRUPT,
                                      "%s: footer: column '%s' granule %u: block reference is "
                                      "out of bounds or of the wrong kind",
                                      s->path, col_name(s, i), g);
        }
    }
    if (cursor_left(&c) != 0)
        return strata_err_set(err, STRATA_ECORRUPT, "%s: footer: %zu stray bytes at its end",
                              s->path, cursor_left(&c));
    return 0;
short_footer:
    return strata_err_set(err, STRATA_ECORRUPT, "%s: footer is cut short", s->path);
}

int segment_open(const char *path, segment **out, strata_err *err)
{
    *out = NULL;
    segment *s = calloc(1, sizeof *s);
    uint8_t *footer = NULL;
    segment_scratch sc = {0};
    int rc;
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
    }
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0) {
        rc = strata_err_set(err, errno == ENOENT ? STRATA_ENOTFOUND : STRATA_EIO, "%s: open: %s",
                            path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(s->fd, &st) != 0) {
        rc = strata_err_set(err, STRATA_EIO, "%s: stat: %s", path, strerror(errno));
        goto fail;
    }
    s->file_bytes = (uint64_t)st.st_size;
    if (s->file_bytes < SEGMENT_HEADER_SIZE + SEGMENT_TRAILER_SIZE) {
        rc = strata_err_set(err, STRATA_ECORRUPT,
                            "%s: %" PRIu64 " bytes is too short for a segment (at least %d)", path,
                            s->file_bytes, SEGMENT_HEADER_SIZE + SEGMENT_TRAILER_SIZE);
        goto fail;
    }
    uint8_t head[SEGMENT_HEADER_SIZE], tail[SEGMENT_TRAILER_SIZE];
    if ((rc = pread_full(s->fd, head, sizeof head, 0)) != 0 ||
        (rc = pread_full(s->fd, tail, sizeof tail, s->file_bytes - SEGMENT_TRAILER_SIZE)) != 0) {
        rc = strata_err_set(err, STRATA_EIO, "%s: read: %s", path,
                            rc == STRATA_ECORRUPT ? "file changed while reading" : strerror(-rc));
        goto fail;
    }
    if (memcmp(head, SEGMENT_MAGIC, 8) != 0) {
        rc = strata_err_set(err, STRATA_ECORRUPT, "%s: header: not a strata segment (bad magic)",
                            path);
        goto fail;
    }
    uint32_t version = load_u32le(head + 8);
    if (version < SEGMENT_VERSION_MIN || version > SEGMENT_VERSION_MAX) {
        rc = strata_err_set(err, STRATA_EVERSION,
                            "%s: header: format version %u, this build reads versions %u to %u",
                            path, version, SEGMENT_VERSION_MIN, SEGMENT_VERSION_MAX);
        goto fail;
    }
    if (load_u32le(head + 12) != 0) {
        rc = strata_err_set(err, STRATA_ECORRUPT, "%s: header: unknown flags %08x", path,
                            load_u32le(head + 12));
        goto fail;
    }
    if (memcmp(tail + 28, SEGMENT_TRAILER_MAGIC, 4) != 0) {
        rc = strata_err_set(err, STRATA_ECORRUPT,
                            "%s: trailer: bad magic (file truncated or not finished)", path);
        goto fail;
    }
    if (load_u32le(tail + 24) != version) {
        rc = strata_err_set(err, STRATA_ECORRUPT,
                            "%s: trailer: version %u differs from the header's %u", path,
                            load_u32le(tail + 24), version);
        goto fail;
    }
    s->version = version;
    s->footer_off = load_u64le(tail);
    uint64_t flen = load_u64le(tail + 8);
    uint64_t fsum = load_u64le(tail + 16);
    /* flen bounded by the room between header and trailer first, so that the sum below
     * cannot wrap around 2^64 to the right value. */
    if (s->footer_off < SEGMENT_HEADER_SIZE ||
        flen > s->file_bytes - SEGMENT_HEADER_SIZE - SEGMENT_TRAILER_SIZE ||
        s->footer_off + flen != s->file_bytes - SEGMENT_TRAILER_SIZE || flen > (1u << 30)) {
        rc = strata_err_set(err, STRATA_ECORRUPT,
                            "%s: trailer: footer at %" PRIu64 " of %" PRIu64
                            " bytes does not fit a %" PRIu64 "-byte file",
                            path, s->footer_off, flen, s->file_bytes);
        goto fail;
    }
    footer = malloc(flen + 1);
    if (!footer) {
        rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    if ((rc = pread_full(s->fd, footer, flen, s->footer_off)) != 0) {
        rc = strata_err_set(err, STRATA_EIO, "%s: read footer: %s", path,
                            rc == STRATA_ECORRUPT ? "file changed while reading" : strerror(-rc));
        goto fail;
    }
    uint64_t sum = XXH3_64bits(footer, flen);
    if (sum != fsum) {
        rc = strata_err_set(err, STRATA_ECORRUPT,
                            "%s: footer: checksum mismatch (stored %016" PRIx64
                            ", computed %016" PRIx64 ")",
                            path, fsum, sum);
        goto fail;
    }
    if ((rc = parse_footer(s, footer, flen, err)) != 0)
        goto fail;
    for (int c = 0; c < s->schema.ncols; c++)
        if (s->schema.cols[c].type == STRATA_STRING && (rc = load_dict(s, c, &sc, err)) != 0)
            goto fail;
    free(footer);
    segment_scratch_free(&sc);
    *out = s;
    return 0;
fail:
    free(footer);
    segment_scratch_free(&sc);
    segment_close(s);
    return rc;
}

void segment_close(segment *s)
{
    if (!s)
        return;
    for (int c = 0; c < STRATA_MAX_COLUMNS; c++) {
        col_state *col = &s->cols[c];
        if (col->bitmaps)
            for (uint32_t i = 0; i < col->dict_n; i++)
                if (col->bitmaps[i])
                    roaring_bitmap_free(col->bitmaps[i]);
        free(col->bitmaps);
        free(col->dict_raw);
    }
    if (s->fd >= 0)
        close(s->fd);
    free(s->granule_mem);
    free(s->path);
    free(s);
}

const char *segment_path(const segment *s) { return s->path; }
uint32_t segment_format_version(const segment *s) { return s->version; }

bool segment_bucket_sorted(const segment *s)
{
    return s->version >= 2 || s->nrows == 0 ||
           segment_sort_bucket(s->min_time) == segment_sort_bucket(s->max_time);
}
const strata_schema *segment_schema(const segment *s) { return &s->schema; }
uint64_t segment_nrows(const segment *s) { return s->nrows; }
uint64_t segment_file_bytes(const segment *s) { return s->file_bytes; }
uint32_t segment_granule_rows(const segment *s) { return s->granule_rows; }
uint32_t segment_ngranules(const segment *s) { return s->ngranules; }
int64_t segment_min_time(const segment *s) { return s->min_time; }
int64_t segment_max_time(const segment *s) { return s->max_time; }

uint32_t segment_granule_nrows(const segment *s, uint32_t g)
{
    uint64_t start = (uint64_t)g * s->granule_rows;
    uint64_t left = s->nrows - start;
    return left < s->granule_rows ? (uint32_t)left : s->granule_rows;
}

const segment_granule_meta *segment_granule(const segment *s, int col, uint32_t g)
{
    return &s->cols[col].granules[g];
}

uint32_t segment_dict_size(const segment *s, int col) { return s->cols[col].dict_n; }

strata_str segment_dict_value(const segment *s, int col, uint32_t code)
{
    const col_state *c = &s->cols[col];
    uint32_t start = code ? c->ends[code - 1] : 0;
    strata_str v = {c->bytes + start, c->ends[code] - start};
    return v;
}

uint32_t segment_dict_lower_bound(const segment *s, int col, const char *p, uint32_t len)
{
    strata_str key = {p, len};
    uint32_t lo = 0, hi = s->cols[col].dict_n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (strata_str_cmp(segment_dict_value(s, col, mid), key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int64_t segment_dict_find(const segment *s, int col, const char *p, uint32_t len)
{
    uint32_t i = segment_dict_lower_bound(s, col, p, len);
    strata_str key = {p, len};
    if (i < s->cols[col].dict_n && strata_str_cmp(segment_dict_value(s, col, i), key) == 0)
        return i;
    return -1;
}

const roaring_bitmap_t *segment_dict_bitmap(const segment *s, int col, uint32_t code)
{
    return s->cols[col].bitmaps[code];
}

uint64_t segment_dict_bytes(const segment *s, int col) { return s->cols[col].dict_ref.stored_len; }
uint64_t segment_bitmap_bytes(const segment *s, int col) { return s->cols[col].bm_ref.stored_len; }

static int check_col(const segment *s, int col, uint32_t g, bool ok_type, const char *want,
                     strata_err *err)
{
    if (col < 0 || col >= s->schema.ncols || g >= s->ngranules)
        return strata_err_set(err, STRATA_EINVAL, "%s: no column %d granule %u", s->path, col, g);
    if (!ok_type)
        return strata_err_set(err, STRATA_EINVAL, "%s: column '%s' is %s, not %s", s->path,
                              col_name(s, col), strata_type_name(s->schema.cols[col].type), want);
    return 0;
}

static int load_granule(const segment *s, int col, uint32_t g, segment_scratch *sc, strata_err *err)
{
    char what[32];
    snprintf(what, sizeof what, "granule %u", g);
    const segment_block *b = &s->cols[col].granules[g].block;
    int rc = load_block(s, col, what, b, sc, err);
    if (rc)
        return rc;
    if (b->raw_len < 1 || sc->raw[0] != b->encoding)
        return strata_err_set(err, STRATA_ECORRUPT,
                              "%s: column '%s' granule %u: encoding %u differs from the footer's %u",
                              s->path, col_name(s, col), g, b->raw_len ? sc->raw[0] : 0, b->encoding);
    return 0;
}

static int bad_block(const segment *s, int col, uint32_t g, strata_err *err)
{
    return strata_err_set(err, STRATA_ECORRUPT,
                          "%s: column '%s' granule %u: %s block is malformed", s->path,
                          col_name(s, col), g, encoding_name(s->cols[col].granules[g].block.encoding));
}

int segment_read_ints(const segment *s, int col, uint32_t g, int64_t *out, segment_scratch *sc,
                      strata_err *err)
{
    int rc = check_col(s, col, g, col >= 0 && col < s->schema.ncols &&
                                      strata_type_is_int(s->schema.cols[col].type),
                       "an integer column", err);
    if (rc || (rc = load_granule(s, col, g, sc, err)) != 0)
        return rc;
    if (decode_ints(sc->raw, s->cols[col].granules[g].block.raw_len, (uint64_t *)out,
                    segment_granule_nrows(s, g)) != 0)
        return bad_block(s, col, g, err);
    return 0;
}

int segment_read_floats(const segment *s, int col, uint32_t g, double *out, segment_scratch *sc,
                        strata_err *err)
{
    int rc = check_col(s, col, g, col >= 0 && col < s->schema.ncols &&
                                      s->schema.cols[col].type == STRATA_FLOAT64,
                       "float64", err);
    if (rc || (rc = load_granule(s, col, g, sc, err)) != 0)
        return rc;
    uint32_t n = segment_granule_nrows(s, g);
    if (!grow((void **)&sc->u64, &sc->u64_cap, sizeof *sc->u64 * n))
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    if (decode_floats(sc->raw, s->cols[col].granules[g].block.raw_len, out, n, sc->u64) != 0)
        return bad_block(s, col, g, err);
    return 0;
}

int segment_read_codes(const segment *s, int col, uint32_t g, uint32_t *out, segment_scratch *sc,
                       strata_err *err)
{
    int rc = check_col(s, col, g, col >= 0 && col < s->schema.ncols &&
                                      s->schema.cols[col].type == STRATA_STRING,
                       "string", err);
    if (rc || (rc = load_granule(s, col, g, sc, err)) != 0)
        return rc;
    uint32_t n = segment_granule_nrows(s, g);
    if (!grow((void **)&sc->u64, &sc->u64_cap, sizeof *sc->u64 * n))
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    if (decode_ints(sc->raw, s->cols[col].granules[g].block.raw_len, sc->u64, n) != 0)
        return bad_block(s, col, g, err);
    uint32_t dn = s->cols[col].dict_n;
    for (uint32_t i = 0; i < n; i++) {
        if (sc->u64[i] >= dn)
            return strata_err_set(err, STRATA_ECORRUPT,
                                  "%s: column '%s' granule %u: code %" PRIu64
                                  " is outside the dictionary (%u values)",
                                  s->path, col_name(s, col), g, sc->u64[i], dn);
        out[i] = (uint32_t)sc->u64[i];
    }
    return 0;
}

int segment_read_bytes(const segment *s, int col, uint32_t g, uint32_t *end, const uint8_t **data,
                       segment_scratch *sc, strata_err *err)
{
    int rc = check_col(s, col, g, col >= 0 && col < s->schema.ncols && s->schema.cols[col].type == STRATA_BYTES,
                       "bytes", err);
    if (rc || (rc = load_granule(s, col, g, sc, err)) != 0)
        return rc;
    uint32_t n = segment_granule_nrows(s, g), raw_len = s->cols[col].granules[g].block.raw_len;
    if (raw_len < 5 || load_u32le(sc->raw + 1) != n || (uint64_t)n * 4 > raw_len - 5)
        return bad_block(s, col, g, err);
    uint64_t room = raw_len - 5 - (uint64_t)n * 4;
    uint32_t prev = 0;
    for (uint32_t i = 0; i < n; i++) {
        end[i] = load_u32le(sc->raw + 5 + (size_t)i * 4);
        if (end[i] < prev || end[i] > room)
            return bad_block(s, col, g, err);
        prev = end[i];
    }
    if (prev != room)
        return bad_block(s, col, g, err);
    *data = sc->raw + 5 + (size_t)n * 4;
    return 0;
}

int segment_verify(const segment *s, strata_err *err)
{
    segment_scratch sc = {0};
    size_t cap = s->granule_rows;
    int64_t *iv = malloc(sizeof *iv * cap);
    double *fv = malloc(sizeof *fv * cap);
    uint32_t *cv = malloc(sizeof *cv * cap); /* codes, or a bytes column's ends */
    int64_t tmin = 0, tmax = -1; /* the time column's range, as decoded */
    int rc = 0;
    if (!iv || !fv || !cv) {
        rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
        goto done;
    }
    for (int c = 0; c < s->schema.ncols && rc == 0; c++) {
        strata_type t = s->schema.cols[c].type;
        for (uint32_t g = 0; g < s->ngranules && rc == 0; g++) {
            const segment_granule_meta *gr = &s->cols[c].granules[g];
            uint32_t n = segment_granule_nrows(s, g);
            uint64_t lo, hi;
            uint8_t flags = 0;
            if (strata_type_is_int(t)) {
                if ((rc = segment_read_ints(s, c, g, iv, &sc, err)) != 0)
                    break;
                lo = hi = (uint64_t)iv[0];
                for (uint32_t i = 1; i < n; i++) {
                    uint64_t x = (uint64_t)iv[i];
                    if (t == STRATA_UINT64) {
                        lo = x < lo ? x : lo;
                        hi = x > hi ? x : hi;
                    } else {
                        lo = (int64_t)x < (int64_t)lo ? x : lo;
                        hi = (int64_t)x > (int64_t)hi ? x : hi;
                    }
                }
                if (c == s->schema.time_col) {
                    tmin = g == 0 || (int64_t)lo < tmin ? (int64_t)lo : tmin;
                    tmax = g == 0 || (int64_t)hi > tmax ? (int64_t)hi : tmax;
                }
                if ((t == STRATA_BOOL && hi > 1) ||
                    (t == STRATA_INT32 && ((int64_t)lo < INT32_MIN || (int64_t)hi > INT32_MAX))) {
                    rc = strata_err_set(err, STRATA_ECORRUPT,
                                        "%s: column '%s' granule %u: values outside the %s range",
                                        s->path, col_name(s, c), g, strata_type_name(t));
                    break;
                }
            } else if (t == STRATA_BYTES) {
                const uint8_t *data;
                if ((rc = segment_read_bytes(s, c, g, cv, &data, &sc, err)) != 0)
                    break;
                uint32_t prev = 0, mn = UINT32_MAX, mx = 0;
                for (uint32_t i = 0; i < n; i++) {
                    uint32_t len = cv[i] - prev;
                    mn = len < mn ? len : mn;
                    mx = len > mx ? len : mx;
                    prev = cv[i];
                }
                lo = mn;
                hi = mx;
            } else if (t == STRATA_FLOAT64) {
                if ((rc = segment_read_floats(s, c, g, fv, &sc, err)) != 0)
                    break;
                double dlo = INFINITY, dhi = -INFINITY;
                for (uint32_t i = 0; i < n; i++) {
                    if (isnan(fv[i]))
                        flags |= SEGMENT_GRANULE_HAS_NAN;
                    else {
                        dlo = fv[i] < dlo ? fv[i] : dlo;
                        dhi = fv[i] > dhi ? fv[i] : dhi;
                    }
                }
                memcpy(&lo, &dlo, 8);
                memcpy(&hi, &dhi, 8);
            } else {
                if ((rc = segment_read_codes(s, c, g, cv, &sc, err)) != 0)
                    break;
                lo = hi = cv[0];
                uint32_t row0 = g * s->granule_rows;
                for (uint32_t i = 0; i < n; i++) {
                    lo = cv[i] < lo ? cv[i] : lo;
                    hi = cv[i] > hi ? cv[i] : hi;
                    if (!roaring_bitmap_contains(s->cols[c].bitmaps[cv[i]], row0 + i)) {
                        rc = strata_err_set(err, STRATA_ECORRUPT,
                                            "%s: column '%s' granule %u: row %u is missing from "
                                            "the bitmap of its value",
                                            s->path, col_name(s, c), g, row0 + i);
                        break;
                    }
                }
                if (rc)
                    break;
            }
            if (lo != gr->min || hi != gr->max || flags != gr->flags) {
                rc = strata_err_set(err, STRATA_ECORRUPT,
                                    "%s: column '%s' granule %u: min/max in the footer do not "
                                    "match the data",
                                    s->path, col_name(s, c), g);
                break;
            }
        }
    }
    if (rc == 0 && s->nrows > 0 && (tmin != s->min_time || tmax != s->max_time))
        rc = strata_err_set(err, STRATA_ECORRUPT,
                            "%s: footer time range %" PRId64 "..%" PRId64
                            " differs from the data's %" PRId64 "..%" PRId64,
                            s->path, s->min_time, s->max_time, tmin, tmax);
done:
    free(iv);
    free(fv);
    free(cv);
    segment_scratch_free(&sc);
    return rc;
}
