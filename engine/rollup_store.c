/*
 * rollup_store.c — the tiers' files (rollup_store.h): the TIER manifest, writing a
 * checkpoint's changed ranges as segments, merging a partition's segments from the same
 * checkpoint, and reading everything back at open.
 *
 * In memory each tier keeps its manifest as last committed (the segments in apply
 * order, with their ranges); a save builds the next list from it, writes the new
 * segments, commits, and only then removes the files that dropped out of the list.
 */
#include "engine/rollup_store.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/buf.h"
#include "engine/clock.h"
#include "engine/fs.h"
#include "engine/query_agg.h"
#include "engine/segment.h"
#include "engine/segment_format.h"
#include "engine/sketch.h"
#include "engine/units.h"

#define TIER_MAGIC "STRATIER"
#define TIER_NAME "TIER"
#define TIER_TMP_NAME "TIER.tmp"
#define TIER_VERSION 1u

enum { F_N = 1, F_I = 2, F_F = 4, F_C = 8, F_SK = 16 };
enum { DEF_CHANGED = 1 }; /* tier_manifest_read: the tier's definition is not the stored one's */

typedef struct seg_entry {
    uint64_t id;
    int64_t part;
    uint32_t level;
    uint64_t rows, bytes;
    int64_t (*r)[2];
    uint32_t nr;
} seg_entry;

typedef struct tier_files {
    char dir[4096];
    uint64_t def;        /* the definition's hash */
    uint64_t generation, next_id;
    seg_entry *segs;
    uint32_t nsegs;
    uint64_t saves, merges;
    int64_t last_save_ms;
    rollup_store_tier_stats stats; /* a copy for readers, under the store's stats_mu */
    /* What the committed manifest says besides its segments (rollup_store_commit_floor
     * writes it again with a new floor). */
    bool have_last;
    struct {
        bool built;
        int64_t built_from, sealed_through, floor;
        int64_t *dirty;
        uint32_t ndirty;
        uint64_t raw_mark;
    } last;
} tier_files;

struct rollup_store {
    pthread_mutex_t stats_mu; /* guards each tier's stats copy only: never held during I/O */
    const strata_schema *sc;
    rollup_set *rs;
    int ntiers;
    tier_files t[STRATA_MAX_ROLLUPS];
};

/* ---- names and columns ------------------------------------------------------------------- */

static unsigned state_fields(const strata_schema *sc, const query_agg *a)
{
    bool is_int = a->col >= 0 && strata_type_is_int(sc->cols[a->col].type);
    switch (a->fn) {
    case STRATA_AGG_SUM: return F_N | (is_int ? F_I : F_F | F_C);
    case STRATA_AGG_AVG: return F_N | F_F | F_C;
    case STRATA_AGG_MIN:
    case STRATA_AGG_MAX: return F_N | (is_int ? F_I : F_F);
    case STRATA_AGG_UNIQ:
    case STRATA_AGG_QUANTILE: return F_N | F_SK;
    default: return F_N;
    }
}

static void add_col(strata_schema *out, const char *base, const char *suffix, strata_type t)
{
    strata_column *c = &out->cols[out->ncols++];
    size_t a = strnlen(base, sizeof c->name - 1), b = strlen(suffix);
    if (a + b >= sizeof c->name) /* (callers keep base short enough) */
        b = sizeof c->name - 1 - a;
    memcpy(c->name, base, a);
    memcpy(c->name + a, suffix, b);
    c->name[a + b] = 0;
    c->type = t;
}

void rollup_store_columns(const strata_schema *sc, int ti, strata_schema *out)
{
    const strata_rollup *r = &sc->rollups[ti];
    query_agg st[ROLLUP_MAX_STATES];
    int n;
    rollup_tier_states(sc, r, st, &n);
    schema_init(out);
    snprintf(out->name, sizeof out->name, "%s", sc->name);
    add_col(out, "start", "", STRATA_TIMESTAMP);
    out->time_col = 0;
    out->order_by[0] = 0;
    out->norder = 1;
    for (int d = 0; d < r->ndims; d++)
        add_col(out, sc->cols[r->dims[d]].name, "", STRATA_STRING);
    for (int k = 0; k < n; k++) {
        char base[STRATA_NAME_MAX];
        const char *fn = strata_agg_name(st[k].fn);
        int len = st[k].col < 0 ? snprintf(base, sizeof base, "%s", fn)
                                : snprintf(base, sizeof base, "%s(%s)", fn, sc->cols[st[k].col].name);
        if (len < 0 || (size_t)len + 4 >= sizeof base)
            snprintf(base, sizeof base, "s%d", k);
        unsigned f = state_fields(sc, &st[k]);
        add_col(out, base, ".n", STRATA_UINT64);
        if (f & F_I)
            add_col(out, base, ".i", STRATA_INT64);
        if (f & F_F)
            add_col(out, base, ".f", STRATA_FLOAT64);
        if (f & F_C)
            add_col(out, base, ".c", STRATA_FLOAT64);
        if (f & F_SK)
            add_col(out, base, ".sk", STRATA_BYTES);
    }
}

void rollup_store_dir_name(const strata_schema *sc, int ti, char *out, size_t cap)
{
    char iv[24];
    units_format_duration_ms(sc->rollups[ti].interval_ms, iv, sizeof iv);
    int same = 0;
    for (int k = 0; k < ti; k++)
        same += sc->rollups[k].interval_ms == sc->rollups[ti].interval_ms;
    if (same)
        snprintf(out, cap, "rollup_%s_%d", iv, same + 1);
    else
        snprintf(out, cap, "rollup_%s", iv);
}

static uint64_t definition_hash(const strata_schema *sc, int ti)
{
    strata_schema cols;
    rollup_store_columns(sc, ti, &cols);
    XXH3_state_t *h = XXH3_createState();
    if (!h)
        return 0;
    XXH3_64bits_reset(h);
    int64_t iv = sc->rollups[ti].interval_ms;
    XXH3_64bits_update(h, &iv, sizeof iv);
    for (int c = 0; c < cols.ncols; c++) {
        uint8_t t = (uint8_t)cols.cols[c].type;
        XXH3_64bits_update(h, &t, 1);
        XXH3_64bits_update(h, cols.cols[c].name, strlen(cols.cols[c].name) + 1);
    }
    uint64_t v = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    return v;
}

/* A tier partition: a month for tiers finer than an hour, else a year. */
static bool by_year(int64_t interval_ms) { return interval_ms >= 3600000; }

static int64_t part_key(int64_t interval_ms, int64_t ts)
{
    int64_t m = schema_partition_key(STRATA_PART_MONTH, ts);
    if (!by_year(interval_ms))
        return m;
    char name[32];
    schema_partition_name(STRATA_PART_MONTH, m, name, sizeof name);
    memcpy(name + 4, "-01", 4); /* "YYYY-MM" -> "YYYY-01" */
    int64_t y = m;
    schema_partition_parse(STRATA_PART_MONTH, name, &y);
    return y;
}

static int64_t part_next(int64_t interval_ms, int64_t key)
{
    int64_t k = key;
    for (int i = 0; i < (by_year(interval_ms) ? 12 : 1); i++)
        k = schema_partition_next(STRATA_PART_MONTH, k);
    return k;
}

static void part_name(int64_t interval_ms, int64_t key, char *out, size_t cap)
{
    schema_partition_name(STRATA_PART_MONTH, key, out, cap);
    if (by_year(interval_ms) && strlen(out) >= 4)
        out[4] = 0;
}

static int seg_path(const tier_files *tf, int64_t iv, const seg_entry *e, char *out, size_t cap, strata_err *err)
{
    char pn[32];
    part_name(iv, e->part, pn, sizeof pn);
    return fs_path(out, cap, err, "%s/%s/%016" PRIx64 ".seg", tf->dir, pn, e->id);
}

static void entry_free(seg_entry *e)
{
    free(e->r);
    e->r = NULL;
    e->nr = 0;
}

static void list_free(seg_entry *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        entry_free(&s[i]);
    free(s);
}

/* ---- the manifest ------------------------------------------------------------------------- */

typedef struct tier_meta {
    bool built;
    int64_t built_from, sealed_through, floor;
    const int64_t *dirty;
    uint32_t ndirty;
} tier_meta;

static int tier_manifest_commit(tier_files *tf, const tier_meta *m, uint64_t raw_mark, const seg_entry *segs,
                           uint32_t nsegs, strata_err *err)
{
    bytebuf b = {0};
    buf_put(&b, TIER_MAGIC, 8);
    buf_put_u32(&b, TIER_VERSION);
    buf_put_u32(&b, 0);
    buf_put_u64(&b, tf->generation + 1);
    buf_put_u64(&b, tf->def);
    buf_put_u64(&b, raw_mark);
    buf_put_u64(&b, tf->next_id);
    buf_put_u8(&b, m->built);
    buf_put_u64(&b, (uint64_t)m->built_from);
    buf_put_u64(&b, (uint64_t)m->sealed_through);
    buf_put_u64(&b, (uint64_t)m->floor);
    uint32_t nd = 0;
    for (uint32_t i = 0; i < m->ndirty; i++)
        nd += m->dirty[i] >= m->built_from && m->dirty[i] < m->sealed_through;
    buf_put_u32(&b, nd);
    for (uint32_t i = 0; i < m->ndirty; i++)
        if (m->dirty[i] >= m->built_from && m->dirty[i] < m->sealed_through)
            buf_put_u64(&b, (uint64_t)m->dirty[i]);
    buf_put_u32(&b, nsegs);
    for (uint32_t i = 0; i < nsegs; i++) {
        const seg_entry *e = &segs[i];
        buf_put_u64(&b, e->id);
        buf_put_u64(&b, (uint64_t)e->part);
        buf_put_u32(&b, e->level);
        buf_put_u64(&b, e->rows);
        buf_put_u64(&b, e->bytes);
        buf_put_u32(&b, e->nr);
        for (uint32_t k = 0; k < e->nr; k++) {
            buf_put_u64(&b, (uint64_t)e->r[k][0]);
            buf_put_u64(&b, (uint64_t)e->r[k][1]);
        }
    }
    buf_put_u64(&b, XXH3_64bits(b.data, b.len));
    if (b.oom) {
        buf_free(&b);
        return strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", tf->dir);
    }
    char path[4200], tmp[4200];
    int rc = fs_path(path, sizeof path, err, "%s/" TIER_NAME, tf->dir);
    if (!rc)
        rc = fs_path(tmp, sizeof tmp, err, "%s/" TIER_TMP_NAME, tf->dir);
    if (!rc) {
        fs_failure f;
        if (fs_write_atomic(tf->dir, path, tmp, b.data, b.len, 0, &f) != 0)
            rc = strata_err_set(err, STRATA_EIO, "%s: %s: %s", path, fs_step_name(f.step), strerror(f.errnum));
    }
    buf_free(&b);
    if (rc)
        return rc;
    tf->generation++;
    /* what it said, for rollup_store_commit_floor */
    int64_t *dirty = malloc(sizeof *dirty * ((size_t)nd + 1));
    uint32_t k = 0;
    for (uint32_t i = 0; dirty && i < m->ndirty; i++)
        if (m->dirty[i] >= m->built_from && m->dirty[i] < m->sealed_through)
            dirty[k++] = m->dirty[i];
    free(tf->last.dirty);
    tf->last.dirty = dirty;
    tf->last.ndirty = k;
    tf->last.built = m->built;
    tf->last.built_from = m->built_from;
    tf->last.sealed_through = m->sealed_through;
    tf->last.floor = m->floor;
    tf->last.raw_mark = raw_mark;
    tf->have_last = dirty != NULL;
    return 0;
}

typedef struct loaded_meta {
    tier_meta m;
    int64_t *dirty;
    uint64_t raw_mark;
} loaded_meta;

/* Reads TIER: 0, STRATA_ENOTFOUND (no file), STRATA_ECORRUPT or STRATA_EIO with err. */
static int tier_manifest_read(tier_files *tf, loaded_meta *lm, strata_err *err)
{
    char path[4200];
    int rc = fs_path(path, sizeof path, err, "%s/" TIER_NAME, tf->dir);
    if (rc)
        return rc;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? STRATA_ENOTFOUND : strata_err_set(err, STRATA_EIO, "%s: %s", path, strerror(errno));
    bytebuf b = {0};
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_put(&b, chunk, n);
    bool ioerr = ferror(f);
    fclose(f);
    if (ioerr || b.oom) {
        buf_free(&b);
        return strata_err_set(err, ioerr ? STRATA_EIO : STRATA_ENOMEM, "%s: %s", path, ioerr ? "read failed" : "out of memory");
    }
    rc = STRATA_ECORRUPT;
    const char *why = "too short";
    /* magic, version, flags, 4 x u64, built, 3 x i64, ndirty, nsegs, checksum */
    if (b.len < 8 + 4 + 4 + 8 * 4 + 1 + 8 * 3 + 4 + 4 + 8)
        goto bad;
    why = "bad magic";
    if (memcmp(b.data, TIER_MAGIC, 8) != 0)
        goto bad;
    why = "checksum mismatch";
    if (load_u64le(b.data + b.len - 8) != XXH3_64bits(b.data, b.len - 8))
        goto bad;
    cursor c = cursor_make(b.data + 8, b.len - 16);
    uint32_t version = cursor_u32(&c), flags = cursor_u32(&c);
    if (version != TIER_VERSION || flags != 0) {
        buf_free(&b);
        return strata_err_set(err, STRATA_EVERSION, "%s: format version %u (flags %x); this build reads version %u",
                              path, version, flags, TIER_VERSION);
    }
    tf->generation = cursor_u64(&c);
    uint64_t def = cursor_u64(&c);
    lm->raw_mark = cursor_u64(&c);
    tf->next_id = cursor_u64(&c);
    lm->m.built = cursor_u8(&c) != 0;
    lm->m.built_from = (int64_t)cursor_u64(&c);
    lm->m.sealed_through = (int64_t)cursor_u64(&c);
    lm->m.floor = (int64_t)cursor_u64(&c);
    uint32_t nd = cursor_u32(&c);
    why = "dirty list";
    if (c.bad || (uint64_t)nd * 8 > cursor_left(&c))
        goto bad;
    lm->dirty = malloc(sizeof *lm->dirty * ((size_t)nd + 1));
    if (!lm->dirty) {
        buf_free(&b);
        return strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
    }
    for (uint32_t i = 0; i < nd; i++)
        lm->dirty[i] = (int64_t)cursor_u64(&c);
    lm->m.dirty = lm->dirty;
    lm->m.ndirty = nd;
    uint32_t ns = cursor_u32(&c);
    why = "segment list";
    if (c.bad || (uint64_t)ns * 40 > cursor_left(&c))
        goto bad;
    tf->segs = calloc((size_t)ns + 1, sizeof *tf->segs);
    if (!tf->segs) {
        buf_free(&b);
        return strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
    }
    for (uint32_t i = 0; i < ns; i++) {
        seg_entry *e = &tf->segs[i];
        e->id = cursor_u64(&c);
        e->part = (int64_t)cursor_u64(&c);
        e->level = cursor_u32(&c);
        e->rows = cursor_u64(&c);
        e->bytes = cursor_u64(&c);
        uint32_t nr = cursor_u32(&c);
        if (c.bad || nr == 0 || (uint64_t)nr * 16 > cursor_left(&c) || e->id >= tf->next_id)
            goto bad;
        if (!(e->r = malloc(sizeof *e->r * nr))) {
            buf_free(&b);
            return strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
        }
        tf->nsegs = i + 1;
        e->nr = nr;
        for (uint32_t k = 0; k < nr; k++) {
            e->r[k][0] = (int64_t)cursor_u64(&c);
            e->r[k][1] = (int64_t)cursor_u64(&c);
            if (e->r[k][0] >= e->r[k][1] || (k && e->r[k][0] < e->r[k - 1][1]))
                goto bad;
        }
    }
    why = "trailing bytes";
    if (c.bad || cursor_left(&c) != 0)
        goto bad;
    buf_free(&b);
    if (tf->def && def != tf->def)
        return DEF_CHANGED;
    tf->def = def;
    return 0;
bad:
    buf_free(&b);
    return strata_err_set(err, rc, "%s: %s", path, why);
}

/* ---- writing a segment from a checkpoint ------------------------------------------------ */

typedef struct code_map {
    uint32_t *codes; /* tier codes used, ascending */
    uint32_t *file;  /* their file codes */
    uint32_t n;
} code_map;

static uint32_t map_code(const code_map *m, uint32_t code)
{
    uint32_t lo = 0, hi = m->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (m->codes[mid] < code)
            lo = mid + 1;
        else
            hi = mid;
    }
    return m->file[lo];
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct sort_ctx_item {
    strata_str s;
    uint32_t i;
} sort_item;

static int cmp_item(const void *a, const void *b)
{
    return strata_str_cmp(((const sort_item *)a)->s, ((const sort_item *)b)->s);
}

/* The buckets of ck in ranges r[0..nr): indexes into ck->v->b, into *out. */
static uint32_t *pick_buckets(const rollup_checkpoint *ck, int64_t (*r)[2], uint32_t nr, uint32_t *n)
{
    const rollup_tier_view *v = ck->v;
    uint32_t cap = 16, k = 0;
    uint32_t *idx = malloc(sizeof *idx * cap);
    for (uint32_t j = 0; idx && j < nr; j++)
        for (uint32_t i = rollup_buckets_lower(v->b, v->nb, r[j][0]); i < v->nb && v->b[i]->start < r[j][1]; i++) {
            if (k == cap) {
                uint32_t *g = realloc(idx, sizeof *g * (cap *= 2));
                if (!g) {
                    free(idx);
                    return NULL;
                }
                idx = g;
            }
            idx[k++] = i;
        }
    *n = k;
    return idx;
}

/* Writes the buckets of ck in ranges e->r as segment e (its rows and bytes filled). */
static int write_segment(rollup_store *st, tier_files *tf, const rollup_checkpoint *ck, seg_entry *e, strata_err *err)
{
    const strata_schema *sc = st->sc;
    int ti = ck->tier;
    const strata_rollup *ru = &sc->rollups[ti];
    const query_agg *sts;
    int nst;
    rollup_tier_def(st->rs, ti, &sts, &nst);
    strata_schema cols;
    rollup_store_columns(sc, ti, &cols);
    char path[4200], dir[4200], pn[32];
    part_name(ru->interval_ms, e->part, pn, sizeof pn);
    int rc = fs_path(dir, sizeof dir, err, "%s/%s", tf->dir, pn);
    if (!rc)
        rc = seg_path(tf, ru->interval_ms, e, path, sizeof path, err);
    if (!rc)
        rc = fs_mkdir_p(dir, err);
    if (rc)
        return rc;
    uint32_t nb = 0;
    uint32_t *bi = pick_buckets(ck, e->r, e->nr, &nb);
    code_map maps[STRATA_MAX_ROLLUP_DIMS] = {{0}};
    const uint32_t G = ROLLUP_STORE_GRANULE_ROWS;
    void *arrays[STRATA_MAX_COLUMNS] = {0};
    uint32_t *ends[STRATA_MAX_COLUMNS] = {0};
    bytebuf sk[STRATA_MAX_COLUMNS];
    segment_bytes sb[STRATA_MAX_COLUMNS];
    memset(sk, 0, sizeof sk);
    segment_writer *w = NULL;
    if (!bi) {
        rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    /* Dictionaries: the codes the rows use, in the file sorted by their strings. */
    uint64_t total = 0;
    for (uint32_t k = 0; k < nb; k++)
        total += ck->v->b[bi[k]]->nrows;
    for (int d = 0; d < ru->ndims && !rc; d++) {
        code_map *m = &maps[d];
        m->codes = malloc(sizeof *m->codes * (total + 1));
        m->file = malloc(sizeof *m->file * (total + 1));
        if (!m->codes || !m->file) {
            rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
            break;
        }
        uint64_t k = 0;
        for (uint32_t j = 0; j < nb; j++) {
            const rollup_bucket *b = ck->v->b[bi[j]];
            for (uint32_t r = 0; r < b->nrows; r++)
                m->codes[k++] = b->dims[(uint64_t)r * (uint64_t)ru->ndims + (uint64_t)d];
        }
        qsort(m->codes, k, sizeof *m->codes, cmp_u32);
        uint32_t u = 0;
        for (uint64_t i = 0; i < k; i++)
            if (u == 0 || m->codes[u - 1] != m->codes[i])
                m->codes[u++] = m->codes[i];
        m->n = u;
    }
    if (rc)
        goto out;
    segment_write_opts opts = {.codec = STRATA_CODEC_ZSTD, .zstd_level = 3, .granule_rows = G,
                               .version = SEGMENT_VERSION_BYTES}; /* a tier segment, bytes columns or not */
    if (!(w = segment_writer_open(path, &cols, &opts, err))) {
        rc = err->code ? err->code : STRATA_EIO;
        goto out;
    }
    for (int d = 0; d < ru->ndims && !rc; d++) {
        code_map *m = &maps[d];
        sort_item *it = malloc(sizeof *it * ((size_t)m->n + 1));
        strata_str *vals = malloc(sizeof *vals * ((size_t)m->n + 1));
        if (!it || !vals) {
            free(it);
            free(vals);
            rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
            break;
        }
        for (uint32_t i = 0; i < m->n; i++)
            it[i] = (sort_item){rollup_dict_value(st->rs, ti, d, m->codes[i]), i};
        qsort(it, m->n, sizeof *it, cmp_item);
        for (uint32_t i = 0; i < m->n; i++) {
            vals[i] = it[i].s;
            m->file[it[i].i] = i;
        }
        rc = segment_writer_set_dict(w, 1 + d, vals, m->n, err);
        free(it);
        free(vals);
    }
    for (int c = 0; c < cols.ncols && !rc; c++) {
        arrays[c] = malloc(8 * (size_t)G);
        if (cols.cols[c].type == STRATA_BYTES)
            ends[c] = malloc(sizeof(uint32_t) * G);
        if (!arrays[c] || (cols.cols[c].type == STRATA_BYTES && !ends[c]))
            rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
    }
    const void *colp[STRATA_MAX_COLUMNS];
    uint32_t fill = 0;
    for (uint32_t j = 0; j < nb && !rc; j++) {
        const rollup_bucket *b = ck->v->b[bi[j]];
        for (uint32_t r = 0; r < b->nrows && !rc; r++) {
            int c = 0;
            ((int64_t *)arrays[c++])[fill] = b->start;
            for (int d = 0; d < ru->ndims; d++, c++)
                ((uint32_t *)arrays[c])[fill] = map_code(&maps[d], b->dims[(uint64_t)r * (uint64_t)ru->ndims + (uint64_t)d]);
            const agg_state *s = &b->states[(uint64_t)r * (uint64_t)nst];
            for (int k = 0; k < nst; k++) {
                unsigned f = state_fields(sc, &sts[k]);
                ((int64_t *)arrays[c++])[fill] = (int64_t)(s[k].n * 2 + (s[k].has ? 1 : 0));
                if (f & F_I)
                    ((int64_t *)arrays[c++])[fill] = s[k].i;
                if (f & F_F)
                    ((double *)arrays[c++])[fill] = s[k].f;
                if (f & F_C)
                    ((double *)arrays[c++])[fill] = s[k].comp;
                if (f & F_SK) {
                    if (s[k].sk && sts[k].fn == STRATA_AGG_UNIQ && !hll_store(s[k].sk, &sk[c])) {
                        rc = strata_err_set(err, STRATA_EINVAL, "%s: a uniq sketch of bucket %" PRId64
                                            " lost registers to a failed allocation and cannot be saved", path, b->start);
                        break;
                    }
                    if (s[k].sk && sts[k].fn == STRATA_AGG_QUANTILE)
                        dds_packed_store(s[k].sk, &sk[c]);
                    if (sk[c].len > UINT32_MAX) {
                        rc = strata_err_set(err, STRATA_EINVAL, "%s: a granule's sketches pass 4 GiB", path);
                        break;
                    }
                    ends[c][fill] = (uint32_t)sk[c].len;
                    c++;
                }
            }
            if (rc)
                break;
            if (++fill == G || (j + 1 == nb && r + 1 == b->nrows)) {
                for (int x = 0; x < cols.ncols; x++) {
                    if (cols.cols[x].type == STRATA_BYTES) {
                        if (sk[x].oom) {
                            rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
                            break;
                        }
                        sb[x] = (segment_bytes){ends[x], sk[x].data};
                        colp[x] = &sb[x];
                    } else {
                        colp[x] = arrays[x];
                    }
                }
                if (!rc)
                    rc = segment_writer_add_granule(w, fill, colp, err);
                for (int x = 0; x < cols.ncols; x++)
                    sk[x].len = 0;
                fill = 0;
            }
        }
    }
    if (!rc) {
        segment_info info;
        rc = segment_writer_finish(w, &info, err);
        w = NULL;
        if (!rc) {
            e->rows = info.nrows;
            e->bytes = info.bytes;
        }
    }
out:
    segment_writer_abort(w);
    for (int d = 0; d < STRATA_MAX_ROLLUP_DIMS; d++) {
        free(maps[d].codes);
        free(maps[d].file);
    }
    for (int c = 0; c < STRATA_MAX_COLUMNS; c++) {
        free(arrays[c]);
        free(ends[c]);
        buf_free(&sk[c]);
    }
    free(bi);
    return rc;
}

/* ---- save ---------------------------------------------------------------------------------- */

/* Copies tf's figures for rollup_store_get_stats. */
static void stats_publish(rollup_store *st, tier_files *tf)
{
    rollup_store_tier_stats s = {.segments = tf->nsegs, .saves = tf->saves, .merges = tf->merges,
                                 .generation = tf->generation, .last_save_ms = tf->last_save_ms};
    for (uint32_t i = 0; i < tf->nsegs; i++) {
        s.rows += tf->segs[i].rows;
        s.bytes += tf->segs[i].bytes;
    }
    pthread_mutex_lock(&st->stats_mu);
    tf->stats = s;
    pthread_mutex_unlock(&st->stats_mu);
}

/* Appends [from, to) to e's ranges (they arrive ascending; touching ones join). */
static bool range_push(seg_entry *e, int64_t from, int64_t to)
{
    if (e->nr && e->r[e->nr - 1][1] >= from) {
        if (to > e->r[e->nr - 1][1])
            e->r[e->nr - 1][1] = to;
        return true;
    }
    int64_t(*r)[2] = realloc(e->r, sizeof *r * (e->nr + 1));
    if (!r)
        return false;
    e->r = r;
    e->r[e->nr][0] = from;
    e->r[e->nr][1] = to;
    e->nr++;
    return true;
}

typedef struct range_pair {
    int64_t a, b;
} range_pair;

static int cmp_range(const void *x, const void *y)
{
    const range_pair *p = x, *q = y;
    return p->a < q->a ? -1 : p->a > q->a;
}

/* e's ranges := the union of the ranges of segs[lo..hi), clipped at from. */
static bool ranges_union(seg_entry *e, const seg_entry *segs, uint32_t lo, uint32_t hi, int64_t from)
{
    uint64_t n = 0;
    for (uint32_t i = lo; i < hi; i++)
        n += segs[i].nr;
    range_pair *all = malloc(sizeof *all * (n + 1));
    if (!all)
        return false;
    n = 0;
    for (uint32_t i = lo; i < hi; i++)
        for (uint32_t k = 0; k < segs[i].nr; k++)
            all[n++] = (range_pair){segs[i].r[k][0] > from ? segs[i].r[k][0] : from, segs[i].r[k][1]};
    qsort(all, n, sizeof *all, cmp_range);
    bool ok = true;
    for (uint64_t i = 0; i < n && ok; i++)
        if (all[i].a < all[i].b)
            ok = range_push(e, all[i].a, all[i].b);
    free(all);
    return ok;
}

typedef struct file_ref {
    uint64_t id;
    int64_t part;
} file_ref;

static void remove_files(tier_files *tf, int64_t iv, const file_ref *f, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        char path[4200];
        strata_err e = {0};
        seg_entry x = {.id = f[i].id, .part = f[i].part};
        if (seg_path(tf, iv, &x, path, sizeof path, &e) == 0)
            unlink(path);
    }
}

static bool entry_copy(seg_entry *dst, const seg_entry *src)
{
    *dst = *src;
    dst->r = malloc(sizeof *dst->r * (src->nr + 1));
    if (!dst->r)
        return false;
    memcpy(dst->r, src->r, sizeof *dst->r * src->nr);
    return true;
}

/* Finds the next run to merge among next[0..n): FAN_IN consecutive segments of one
 * partition and level (every segment of a partition with two or more, for optimize).
 * Fills run[] (indexes into next, ascending) and returns its length, 0 for none. */
static uint32_t merge_run(const seg_entry *next, uint32_t n, bool optimize, uint32_t *run)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = 0;
        if (optimize) {
            for (uint32_t j = i; j < n; j++)
                if (next[j].part == next[i].part)
                    run[k++] = j;
            if (k >= 2)
                return k;
            continue;
        }
        /* the segments of i's partition from i on, while they keep i's level */
        for (uint32_t j = i; j < n && k < ROLLUP_STORE_FAN_IN; j++) {
            if (next[j].part != next[i].part)
                continue;
            if (next[j].level != next[i].level)
                break;
            run[k++] = j;
        }
        if (k == ROLLUP_STORE_FAN_IN)
            return k;
    }
    return 0;
}

int rollup_store_save(rollup_store *st, const rollup_checkpoint *ck, uint64_t raw_mark, bool optimize, strata_err *err)
{
    int ti = ck->tier;
    tier_files *tf = &st->t[ti];
    int64_t iv = st->sc->rollups[ti].interval_ms;
    tier_meta m = {ck->built, ck->built_from, ck->sealed_through, ck->floor, ck->v->dirty, ck->v->ndirty};
    int rc = fs_mkdir_p(tf->dir, err);
    if (rc)
        return rc;
    /* The next list (entries own copies of their ranges): the old one without the
     * partitions the tier forgot (without anything, when the tier was reset), then one
     * delta per partition the changes touch, then merges. */
    bool rewrite_all = ck->changed_all || !ck->built;
    uint32_t cap = tf->nsegs + 64, n = 0, kept;
    seg_entry *next = calloc(cap, sizeof *next);
    file_ref *gone = calloc(cap * 2, sizeof *gone), *made = calloc(cap * 2, sizeof *made);
    uint32_t ngone = 0, nmade = 0;
    uint64_t next_id = tf->next_id;
    if (!next || !gone || !made) {
        rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", tf->dir);
        goto fail;
    }
    for (uint32_t i = 0; i < tf->nsegs; i++) {
        const seg_entry *e = &tf->segs[i];
        if (rewrite_all || part_next(iv, e->part) <= ck->built_from)
            gone[ngone++] = (file_ref){e->id, e->part};
        else if (!entry_copy(&next[n++], e)) {
            rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", tf->dir);
            goto fail;
        }
    }
    kept = n;
    int64_t(*chg)[2] = ck->changed;
    uint32_t nchg = ck->nchanged;
    int64_t whole[1][2] = {{ck->built_from, ck->sealed_through}};
    if (rewrite_all) {
        chg = whole;
        nchg = ck->built && ck->built_from < ck->sealed_through ? 1 : 0;
    }
    for (uint32_t i = 0; i < nchg; i++) {
        int64_t a = chg[i][0] > ck->built_from ? chg[i][0] : ck->built_from;
        int64_t b = chg[i][1] < ck->sealed_through ? chg[i][1] : ck->sealed_through;
        while (a < b) {
            int64_t p = part_key(iv, a), pe = part_next(iv, p), e = b < pe ? b : pe;
            seg_entry *d = NULL;
            for (uint32_t k = kept; k < n; k++)
                if (next[k].part == p)
                    d = &next[k];
            if (!d) {
                if (n + 1 >= cap) {
                    rc = strata_err_set(err, STRATA_EINVAL, "%s: over %u partitions changed at once", tf->dir, cap - kept);
                    goto fail;
                }
                d = &next[n++];
                *d = (seg_entry){.id = next_id++, .part = p, .level = rewrite_all ? 1 : 0};
            }
            if (!range_push(d, a, e)) {
                rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", tf->dir);
                goto fail;
            }
            a = e;
        }
    }
    /* Write the deltas. One that holds no bucket and covers nothing an older segment of
     * its partition holds changes nothing, and is left out. */
    for (uint32_t k = kept; k < n;) {
        bool older = false;
        for (uint32_t j = 0; j < kept; j++)
            older |= next[j].part == next[k].part;
        uint32_t cnt = 0;
        free(pick_buckets(ck, next[k].r, next[k].nr, &cnt));
        if (!older && cnt == 0) {
            entry_free(&next[k]);
            memmove(next + k, next + k + 1, sizeof *next * (n - k - 1));
            n--;
            continue;
        }
        if ((rc = write_segment(st, tf, ck, &next[k], err)) != 0)
            goto fail;
        made[nmade++] = (file_ref){next[k].id, next[k].part};
        k++;
    }
    /* Merges: each run becomes one segment a level up, at its last member's place. */
    uint32_t run[ROLLUP_STORE_FAN_IN > 64 ? ROLLUP_STORE_FAN_IN : 64];
    uint32_t nrun;
    uint64_t merges = 0;
    while ((nrun = merge_run(next, n, optimize, run)) > 0 && nmade < cap * 2 - 1 && ngone + nrun < cap * 2) {
        uint32_t lvl = 0;
        for (uint32_t k = 0; k < nrun; k++)
            lvl = next[run[k]].level > lvl ? next[run[k]].level : lvl;
        seg_entry mg = {.id = next_id++, .part = next[run[0]].part,
                        .level = lvl + 1 < ROLLUP_STORE_MAX_LEVEL ? lvl + 1 : ROLLUP_STORE_MAX_LEVEL};
        seg_entry members[64];
        for (uint32_t k = 0; k < nrun; k++)
            members[k] = next[run[k]];
        if (!ranges_union(&mg, members, 0, nrun, ck->built_from)) {
            entry_free(&mg);
            rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", tf->dir);
            goto fail;
        }
        if (mg.nr == 0) { /* every range lies before built_from: the files just go */
            entry_free(&mg);
        } else if ((rc = write_segment(st, tf, ck, &mg, err)) != 0) {
            entry_free(&mg);
            goto fail;
        } else {
            made[nmade++] = (file_ref){mg.id, mg.part};
        }
        for (uint32_t k = 0; k < nrun; k++) {
            gone[ngone++] = (file_ref){next[run[k]].id, next[run[k]].part};
            entry_free(&next[run[k]]);
            next[run[k]].id = 0;
        }
        if (mg.nr)
            next[run[nrun - 1]] = mg;
        uint32_t w = 0;
        for (uint32_t k = 0; k < n; k++)
            if (next[k].id != 0)
                next[w++] = next[k];
        n = w;
        merges++; /* (top-level runs merge among themselves, staying at the top level) */
    }
    uint64_t old_next = tf->next_id;
    tf->next_id = next_id;
    if ((rc = tier_manifest_commit(tf, &m, raw_mark, next, n, err)) != 0) {
        tf->next_id = old_next;
        goto fail;
    }
    /* Committed: files out of the list go (those written and merged away in this save too). */
    remove_files(tf, iv, gone, ngone);
    list_free(tf->segs, tf->nsegs);
    tf->segs = next;
    tf->nsegs = n;
    tf->saves++;
    tf->merges += merges;
    tf->last_save_ms = clock_wall_ms();
    stats_publish(st, tf);
    free(gone);
    free(made);
    return 0;
fail:
    remove_files(tf, iv, made, nmade);
    if (next)
        list_free(next, n);
    free(gone);
    free(made);
    return rc;
}

/* ---- reading back ------------------------------------------------------------------------ */

typedef struct bucket_vec {
    rollup_bucket **b;
    uint32_t n, cap;
} bucket_vec;

static void vec_free(rollup_set *rs, int ti, bucket_vec *v)
{
    for (uint32_t i = 0; i < v->n; i++)
        rollup_bucket_unref(rs, ti, v->b[i]);
    free(v->b);
    memset(v, 0, sizeof *v);
}

static bool in_ranges(const seg_entry *e, int64_t s)
{
    for (uint32_t k = 0; k < e->nr; k++)
        if (s >= e->r[k][0] && s < e->r[k][1])
            return true;
    return false;
}

/* Reads segment e of tier ti into fresh buckets (sorted by start) in *out. */
static int load_segment(rollup_store *st, int ti, tier_files *tf, const seg_entry *e, bucket_vec *out, strata_err *err)
{
    const strata_schema *sc = st->sc;
    const strata_rollup *ru = &sc->rollups[ti];
    int64_t I = ru->interval_ms;
    const query_agg *sts;
    int nst;
    rollup_tier_def(st->rs, ti, &sts, &nst);
    strata_schema want;
    rollup_store_columns(sc, ti, &want);
    char path[4200];
    int rc = seg_path(tf, I, e, path, sizeof path, err);
    if (rc)
        return rc;
    segment *g = NULL;
    if ((rc = segment_open(path, &g, err)) != 0)
        return rc == STRATA_EIO && errno == ENOENT ? strata_err_set(err, STRATA_ECORRUPT, "%s: missing", path) : rc;
    const strata_schema *have = segment_schema(g);
    bool same = have->ncols == want.ncols && have->time_col == 0;
    for (int c = 0; same && c < want.ncols; c++)
        same = have->cols[c].type == want.cols[c].type && strcmp(have->cols[c].name, want.cols[c].name) == 0;
    uint64_t nrows = segment_nrows(g);
    if (!same || nrows != e->rows) {
        segment_close(g);
        return strata_err_set(err, STRATA_ECORRUPT, "%s: not the tier's columns or rows (%" PRIu64 " rows, the manifest says %" PRIu64 ")",
                              path, nrows, e->rows);
    }
    segment_scratch scr = {0};
    int64_t *starts = malloc(sizeof *starts * (nrows + 1));
    uint32_t gr = segment_granule_rows(g), ng = segment_ngranules(g);
    void *buf = malloc(8 * (size_t)gr + 8);
    uint32_t *ends = malloc(sizeof *ends * ((size_t)gr + 1));
    uint32_t *dmap[STRATA_MAX_ROLLUP_DIMS] = {0};
    if (!starts || !buf || !ends) {
        rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    for (uint32_t k = 0; k < ng && !rc; k++)
        rc = segment_read_ints(g, 0, k, starts + (uint64_t)k * gr, &scr, err);
    for (uint64_t r = 0; r < nrows && !rc; r++)
        if (rollup_floor_to(starts[r], I) != starts[r] || !in_ranges(e, starts[r]) || (r && starts[r] < starts[r - 1]))
            rc = strata_err_set(err, STRATA_ECORRUPT, "%s: row %" PRIu64 ": bucket start %" PRId64 " is not one the segment covers in order",
                                path, r, starts[r]);
    for (int d = 0; d < ru->ndims && !rc; d++) {
        uint32_t n = segment_dict_size(g, 1 + d);
        if (!(dmap[d] = malloc(sizeof *dmap[d] * ((size_t)n + 1)))) {
            rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
            break;
        }
        for (uint32_t i = 0; i < n && !rc; i++)
            if ((dmap[d][i] = rollup_dict_intern(st->rs, ti, d, segment_dict_value(g, 1 + d, i))) == UINT32_MAX)
                rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
    }
    /* One bucket per run of a start. */
    uint64_t first = out->n;
    for (uint64_t r = 0; r < nrows && !rc;) {
        uint64_t e2 = r;
        while (e2 < nrows && starts[e2] == starts[r])
            e2++;
        rollup_bucket *b = rollup_bucket_new(st->rs, ti, starts[r], (uint32_t)(e2 - r));
        if (!b || (out->n == out->cap && !(out->b = realloc(out->b, sizeof *out->b * (out->cap = out->cap ? out->cap * 2 : 64))))) {
            rollup_bucket_unref(st->rs, ti, b);
            rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
            break;
        }
        out->b[out->n++] = b;
        r = e2;
    }
    /* Fill them, column by column, granule by granule. */
    for (int c = 1; c < want.ncols && !rc; c++) {
        int k = -1; /* the state column c belongs to, and its field */
        unsigned field = 0;
        int d = c - 1;
        if (c > ru->ndims) {
            int cc = 1 + ru->ndims;
            for (int s2 = 0; s2 < nst && k < 0; s2++) {
                unsigned f = state_fields(sc, &sts[s2]);
                static const unsigned order[] = {F_N, F_I, F_F, F_C, F_SK};
                for (int o = 0; o < 5; o++)
                    if (f & order[o]) {
                        if (cc == c) {
                            k = s2;
                            field = order[o];
                        }
                        cc++;
                    }
            }
        }
        uint64_t bi = first, row = 0; /* bucket and row within it */
        for (uint32_t gi = 0; gi < ng && !rc; gi++) {
            uint32_t n = segment_granule_nrows(g, gi);
            const uint8_t *data = NULL;
            strata_type t = want.cols[c].type;
            if (t == STRATA_STRING)
                rc = segment_read_codes(g, c, gi, buf, &scr, err);
            else if (t == STRATA_FLOAT64)
                rc = segment_read_floats(g, c, gi, buf, &scr, err);
            else if (t == STRATA_BYTES)
                rc = segment_read_bytes(g, c, gi, ends, &data, &scr, err);
            else
                rc = segment_read_ints(g, c, gi, buf, &scr, err);
            for (uint32_t i = 0; i < n && !rc; i++) {
                rollup_bucket *b = out->b[bi];
                if (c <= ru->ndims) {
                    b->dims[row * (uint64_t)ru->ndims + (uint64_t)d] = dmap[d][((uint32_t *)buf)[i]];
                } else {
                    agg_state *s = &b->states[row * (uint64_t)nst + (uint64_t)k];
                    if (field == F_N) {
                        uint64_t v = ((uint64_t *)buf)[i];
                        s->n = v >> 1;
                        s->has = v & 1;
                    } else if (field == F_I) {
                        s->i = ((int64_t *)buf)[i];
                    } else if (field == F_F) {
                        s->f = ((double *)buf)[i];
                    } else if (field == F_C) {
                        s->comp = ((double *)buf)[i];
                    } else {
                        uint32_t lo = i ? ends[i - 1] : 0, len = ends[i] - lo;
                        int lr = 0;
                        if (len && sts[k].fn == STRATA_AGG_UNIQ) {
                            hll *h;
                            if ((lr = hll_load(data + lo, len, &h)) == 0) {
                                s->sk = h;
                                b->bytes += hll_bytes(h);
                            }
                        } else if (len) {
                            dds_packed *pk;
                            if ((lr = dds_packed_load(data + lo, len, &pk)) == 0) {
                                s->sk = pk;
                                b->bytes += dds_packed_bytes(pk);
                            }
                        }
                        if (lr)
                            rc = strata_err_set(err, lr, "%s: column '%s' granule %u row %u: %s", path, want.cols[c].name, gi, i,
                                                lr == STRATA_ENOMEM ? "out of memory" : "malformed sketch");
                    }
                }
                if (++row == b->nrows) {
                    bi++;
                    row = 0;
                }
            }
        }
    }
out:
    for (int d = 0; d < STRATA_MAX_ROLLUP_DIMS; d++)
        free(dmap[d]);
    free(starts);
    free(buf);
    free(ends);
    segment_scratch_free(&scr);
    segment_close(g);
    return rc;
}

/* acc := acc without its buckets in e's ranges, merged with fresh (sorted; taken over). */
static int apply_segment(rollup_store *st, int ti, bucket_vec *acc, const seg_entry *e, bucket_vec *fresh)
{
    uint32_t cap = acc->n + fresh->n + 1;
    rollup_bucket **m = malloc(sizeof *m * cap);
    if (!m)
        return STRATA_ENOMEM;
    uint32_t n = 0, i = 0, j = 0;
    while (i < acc->n || j < fresh->n) {
        if (i < acc->n && in_ranges(e, acc->b[i]->start)) {
            rollup_bucket_unref(st->rs, ti, acc->b[i++]);
            continue;
        }
        if (j >= fresh->n || (i < acc->n && acc->b[i]->start < fresh->b[j]->start))
            m[n++] = acc->b[i++];
        else
            m[n++] = fresh->b[j++];
    }
    free(acc->b);
    free(fresh->b);
    memset(fresh, 0, sizeof *fresh);
    acc->b = m;
    acc->n = n;
    acc->cap = cap;
    return 0;
}

/* Removes the files in tf->dir that the manifest does not list (a save cut short). */
static void remove_unlisted(tier_files *tf)
{
    char p[4700];
    snprintf(p, sizeof p, "%s/" TIER_TMP_NAME, tf->dir);
    unlink(p);
    DIR *d = opendir(tf->dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, TIER_NAME) == 0)
            continue;
        char sub[4400];
        snprintf(sub, sizeof sub, "%s/%s", tf->dir, de->d_name);
        DIR *sd = opendir(sub);
        if (!sd)
            continue;
        struct dirent *fe;
        while ((fe = readdir(sd)) != NULL) {
            uint64_t id;
            char tail[8];
            if (sscanf(fe->d_name, "%16" SCNx64 "%7s", &id, tail) != 2 || strcmp(tail, ".seg") != 0)
                continue;
            bool listed = false;
            for (uint32_t i = 0; i < tf->nsegs && !listed; i++)
                listed = tf->segs[i].id == id;
            if (!listed) {
                snprintf(p, sizeof p, "%s/%s", sub, fe->d_name);
                unlink(p);
            }
        }
        closedir(sd);
    }
    closedir(d);
}

static void tier_files_reset(tier_files *tf)
{
    free(tf->last.dirty);
    memset(&tf->last, 0, sizeof tf->last);
    tf->have_last = false;
    list_free(tf->segs, tf->nsegs);
    tf->segs = NULL;
    tf->nsegs = 0;
    tf->generation = 0;
    tf->next_id = 1;
}

/* Appends printf text to note. */
static void note_add(char *note, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note_add(char *note, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(note);
    if (len + 3 >= cap)
        return;
    if (len)
        len += (size_t)snprintf(note + len, cap - len, "; ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note + len, cap - len, fmt, ap);
    va_end(ap);
}

/* Loads tier ti: 0 (restored, or nothing stored), STRATA_ECORRUPT / STRATA_EVERSION /
 * DEF_CHANGED with err (the caller sets the files aside), other errors. */
static int tier_load(rollup_store *st, int ti, uint64_t *raw_mark, strata_err *err)
{
    tier_files *tf = &st->t[ti];
    loaded_meta lm = {0};
    int rc = tier_manifest_read(tf, &lm, err);
    if (rc == STRATA_ENOTFOUND) {
        tier_files_reset(tf);
        remove_unlisted(tf); /* a first save cut short: its TIER.tmp and segments, none listed */
        return 0;
    }
    bucket_vec acc = {0}, fresh = {0};
    if (rc)
        goto out;
    tf->last.built = lm.m.built;
    tf->last.built_from = lm.m.built_from;
    tf->last.sealed_through = lm.m.sealed_through;
    tf->last.floor = lm.m.floor;
    tf->last.raw_mark = lm.raw_mark;
    tf->last.ndirty = lm.m.ndirty;
    tf->last.dirty = malloc(sizeof *tf->last.dirty * ((size_t)lm.m.ndirty + 1));
    if (tf->last.dirty && lm.m.ndirty)
        memcpy(tf->last.dirty, lm.dirty, sizeof *lm.dirty * lm.m.ndirty);
    tf->have_last = tf->last.dirty != NULL;
    remove_unlisted(tf);
    for (uint32_t i = 0; i < tf->nsegs && !rc && lm.m.built; i++) {
        if ((rc = load_segment(st, ti, tf, &tf->segs[i], &fresh, err)) != 0)
            break;
        if ((rc = apply_segment(st, ti, &acc, &tf->segs[i], &fresh)) != 0)
            strata_err_set(err, rc, "%s: out of memory", tf->dir);
    }
    if (rc)
        goto out;
    if (lm.m.built) {
        uint32_t w = 0; /* only what the tier knows */
        for (uint32_t i = 0; i < acc.n; i++) {
            if (acc.b[i]->start >= lm.m.built_from && acc.b[i]->start < lm.m.sealed_through)
                acc.b[w++] = acc.b[i];
            else
                rollup_bucket_unref(st->rs, ti, acc.b[i]);
        }
        acc.n = w;
        rc = rollup_tier_restore(st->rs, ti, lm.m.built_from, lm.m.sealed_through, lm.m.floor, lm.dirty, lm.m.ndirty,
                                 acc.b, acc.n);
        free(acc.b);
        memset(&acc, 0, sizeof acc);
        if (rc) {
            strata_err_set(err, rc, "%s: out of memory", tf->dir);
            goto out;
        }
        if (lm.raw_mark < *raw_mark)
            *raw_mark = lm.raw_mark;
    }
out:
    vec_free(st->rs, ti, &acc);
    vec_free(st->rs, ti, &fresh);
    free(lm.dirty);
    if (rc)
        tier_files_reset(tf);
    return rc;
}

int rollup_store_open(const char *table_dir, const strata_schema *sc, rollup_set *rs, rollup_store **out,
                      uint64_t *raw_mark, char *note, size_t cap, strata_err *err)
{
    *out = NULL;
    *raw_mark = UINT64_MAX;
    rollup_store *st = calloc(1, sizeof *st);
    if (!st)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    pthread_mutex_init(&st->stats_mu, NULL);
    st->sc = sc;
    st->rs = rs;
    st->ntiers = sc->nrollups;
    for (int ti = 0; ti < st->ntiers; ti++) {
        tier_files *tf = &st->t[ti];
        char name[64];
        rollup_store_dir_name(sc, ti, name, sizeof name);
        int rc = fs_path(tf->dir, sizeof tf->dir, err, "%s/%s", table_dir, name);
        if (rc) {
            rollup_store_close(st);
            return rc;
        }
        tf->def = definition_hash(sc, ti);
        tf->next_id = 1;
        strata_err lerr = {0};
        rc = tier_load(st, ti, raw_mark, &lerr);
        if (rc == DEF_CHANGED) {
            fs_remove_tree(tf->dir);
            note_add(note, cap, "rollup tier %s: its definition changed since it was saved: built again from raw rows", name);
        } else if (rc == STRATA_ECORRUPT || rc == STRATA_EVERSION) {
            char aside[4200];
            snprintf(aside, sizeof aside, "%s.damaged", tf->dir);
            fs_remove_tree(aside);
            rename(tf->dir, aside);
            note_add(note, cap, "rollup tier %s: its files cannot be read (%s): moved to %s.damaged and built again from raw rows",
                     name, lerr.msg, name);
        } else if (rc) {
            *err = lerr;
            rollup_store_close(st);
            return rc;
        }
        stats_publish(st, tf);
    }
    *out = st;
    return 0;
}

void rollup_store_close(rollup_store *st)
{
    if (!st)
        return;
    for (int ti = 0; ti < st->ntiers; ti++) {
        list_free(st->t[ti].segs, st->t[ti].nsegs);
        free(st->t[ti].last.dirty);
    }
    pthread_mutex_destroy(&st->stats_mu);
    free(st);
}

int rollup_store_commit_floor(rollup_store *st, int64_t from, strata_err *err)
{
    for (int ti = 0; st && ti < st->ntiers; ti++) {
        tier_files *tf = &st->t[ti];
        if (!tf->have_last || !tf->last.built)
            continue;
        int64_t I = st->sc->rollups[ti].interval_ms, f = rollup_floor_to(from, I);
        if (f < from)
            f += I;
        tier_meta m = {true, tf->last.built_from, tf->last.sealed_through, tf->last.floor, tf->last.dirty,
                       tf->last.ndirty};
        if (rollup_tier_retention(st->sc, ti) > 0) {
            if (m.floor >= f)
                continue;
            m.floor = f; /* it outlives the raw rows: keeps its buckets */
        } else {
            if (m.built_from >= f)
                continue;
            m.built_from = m.floor = f; /* it goes with them; what it saved past f stays known */
            if (m.sealed_through < f)
                m.sealed_through = f;
        }
        int rc = tier_manifest_commit(tf, &m, tf->last.raw_mark, tf->segs, tf->nsegs, err);
        if (rc)
            return rc;
    }
    return 0;
}

void rollup_store_get_stats(rollup_store *st, int ti, rollup_store_tier_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!st || ti >= st->ntiers)
        return;
    pthread_mutex_lock(&st->stats_mu);
    *out = st->t[ti].stats;
    pthread_mutex_unlock(&st->stats_mu);
}

/* ---- listing, for strata inspect ----------------------------------------------------------- */

int rollup_store_list(const char *tier_dir, rollup_store_entry **out, uint32_t *n, strata_err *err)
{
    *out = NULL;
    *n = 0;
    tier_files *tf = calloc(1, sizeof *tf);
    if (!tf)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    int rc = fs_path(tf->dir, sizeof tf->dir, err, "%s", tier_dir);
    loaded_meta lm = {0};
    if (!rc)
        rc = tier_manifest_read(tf, &lm, err);
    if (rc == STRATA_ENOTFOUND)
        strata_err_set(err, rc, "%s: no " TIER_NAME " file (not a rollup tier directory)", tier_dir);
    /* the interval from the directory name ("rollup_1m", "rollup_1h_2"): month or year partitions */
    const char *base = strrchr(tier_dir, '/');
    base = base ? base + 1 : tier_dir;
    int64_t iv = 60000;
    char ivs[24] = "";
    if (sscanf(base, "rollup_%23[0-9a-z]", ivs) == 1)
        units_parse_duration_ms(ivs, &iv);
    rollup_store_entry *e = rc ? NULL : calloc((size_t)tf->nsegs + 1, sizeof *e);
    if (!rc && !e)
        rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
    for (uint32_t i = 0; !rc && i < tf->nsegs; i++) {
        const seg_entry *s = &tf->segs[i];
        e[i] = (rollup_store_entry){.id = s->id, .level = s->level, .rows = s->rows, .bytes = s->bytes,
                                    .from = s->r[0][0], .to = s->r[s->nr - 1][1]};
        part_name(iv, s->part, e[i].partition, sizeof e[i].partition);
        rc = seg_path(tf, iv, s, e[i].path, sizeof e[i].path, err);
    }
    if (!rc) {
        *out = e;
        *n = tf->nsegs;
    } else {
        free(e);
    }
    free(lm.dirty);
    list_free(tf->segs, tf->nsegs);
    free(tf);
    return rc;
}
