/*
 * manifest.c — reading and atomically committing partition manifests. The byte layout is
 * in manifest.h.
 */
#include "engine/manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "engine/buf.h"
#include "engine/fs.h"

#define MAN_MAGIC "STRATMAN"
#define MAN_VERSION 1u    /* without delete vectors */
#define MAN_VERSION_DV 2u /* with them */
#define MAN_MAX_BYTES (256u << 20)

void manifest_segment_name(uint64_t id, char *out, size_t cap)
{
    snprintf(out, cap, "%016" PRIx64 ".seg", id);
}

bool manifest_source_key(const char *prefix, const char *source, char *out)
{
    return (size_t)snprintf(out, MANIFEST_SOURCE_MAX, "%s%s", prefix, source) < MANIFEST_SOURCE_MAX;
}

void manifest_clear_dvs(manifest *m)
{
    for (uint32_t i = 0; i < m->ndvs; i++)
        free(m->dvs[i].data);
    free(m->dvs);
    m->dvs = NULL;
    m->ndvs = m->dvs_cap = 0;
}

int manifest_set_dv(manifest *m, uint64_t seg_id, const void *p, uint32_t len)
{
    for (uint32_t i = 0; i < m->ndvs; i++)
        if (m->dvs[i].seg_id == seg_id) {
            free(m->dvs[i].data);
            m->dvs[i] = m->dvs[--m->ndvs];
            break;
        }
    if (len == 0)
        return 0;
    if (m->ndvs == m->dvs_cap) {
        uint32_t cap = m->dvs_cap ? m->dvs_cap * 2 : 8;
        manifest_dv *nd = realloc(m->dvs, sizeof *nd * cap);
        if (!nd)
            return STRATA_ENOMEM;
        m->dvs = nd;
        m->dvs_cap = cap;
    }
    uint8_t *copy = malloc(len);
    if (!copy)
        return STRATA_ENOMEM;
    memcpy(copy, p, len);
    m->dvs[m->ndvs++] = (manifest_dv){seg_id, len, copy};
    return 0;
}

const manifest_dv *manifest_get_dv(const manifest *m, uint64_t seg_id)
{
    for (uint32_t i = 0; i < m->ndvs; i++)
        if (m->dvs[i].seg_id == seg_id)
            return &m->dvs[i];
    return NULL;
}

void manifest_free(manifest *m)
{
    manifest_clear_dvs(m);
    free(m->segs);
    free(m->cps);
    memset(m, 0, sizeof *m);
}

int manifest_add_segment(manifest *m, const manifest_segment *s)
{
    if (m->nsegs == m->segs_cap) {
        uint32_t cap = m->segs_cap ? m->segs_cap * 2 : 8;
        manifest_segment *p = realloc(m->segs, sizeof *p * cap);
        if (!p)
            return STRATA_ENOMEM;
        m->segs = p;
        m->segs_cap = cap;
    }
    m->segs[m->nsegs++] = *s;
    return 0;
}

int manifest_remove_segment(manifest *m, uint64_t id)
{
    for (uint32_t i = 0; i < m->nsegs; i++)
        if (m->segs[i].id == id) {
            memmove(&m->segs[i], &m->segs[i + 1], sizeof *m->segs * (m->nsegs - i - 1));
            m->nsegs--;
            manifest_set_dv(m, id, NULL, 0);
            return 0;
        }
    return STRATA_ENOTFOUND;
}

int manifest_set_checkpoint(manifest *m, const char *source, int32_t partition, int64_t next)
{
    size_t len = strlen(source);
    if (len == 0 || len >= MANIFEST_SOURCE_MAX)
        return STRATA_EINVAL;
    for (uint32_t i = 0; i < m->ncps; i++)
        if (m->cps[i].partition == partition && strcmp(m->cps[i].source, source) == 0) {
            m->cps[i].next_offset = next;
            return 0;
        }
    if (m->ncps == m->cps_cap) {
        uint32_t cap = m->cps_cap ? m->cps_cap * 2 : 8;
        manifest_checkpoint *p = realloc(m->cps, sizeof *p * cap);
        if (!p)
            return STRATA_ENOMEM;
        m->cps = p;
        m->cps_cap = cap;
    }
    manifest_checkpoint *cp = &m->cps[m->ncps++];
    memcpy(cp->source, source, len + 1);
    cp->partition = partition;
    cp->next_offset = next;
    return 0;
}

int64_t manifest_get_checkpoint(const manifest *m, const char *source, int32_t partition)
{
    for (uint32_t i = 0; i < m->ncps; i++)
        if (m->cps[i].partition == partition && strcmp(m->cps[i].source, source) == 0)
            return m->cps[i].next_offset;
    return -1;
}

int manifest_copy(manifest *dst, const manifest *src)
{
    memset(dst, 0, sizeof *dst);
    dst->generation = src->generation;
    for (uint32_t i = 0; i < src->nsegs; i++)
        if (manifest_add_segment(dst, &src->segs[i]) != 0)
            goto oom;
    for (uint32_t i = 0; i < src->ncps; i++)
        if (manifest_set_checkpoint(dst, src->cps[i].source, src->cps[i].partition,
                                    src->cps[i].next_offset) != 0)
            goto oom;
    for (uint32_t i = 0; i < src->ndvs; i++)
        if (manifest_set_dv(dst, src->dvs[i].seg_id, src->dvs[i].data, src->dvs[i].len) != 0)
            goto oom;
    return 0;
oom:
    manifest_free(dst);
    return STRATA_ENOMEM;
}

int manifest_read(const char *dir, manifest *m, strata_err *err)
{
    memset(m, 0, sizeof *m);
    char path[4096];
    int prc = fs_path(path, sizeof path, err, "%s/%s", dir, MANIFEST_NAME);
    if (prc)
        return prc;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return strata_err_set(err, STRATA_ENOTFOUND, "%s: no manifest", path);
        return strata_err_set(err, STRATA_EIO, "%s: open: %s", path, strerror(errno));
    }
    bytebuf b = {0};
    uint8_t tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) {
        buf_put(&b, tmp, n);
        if (b.oom || b.len > MAN_MAX_BYTES)
            break;
    }
    int read_err = ferror(f);
    fclose(f);
    int rc = 0;
    if (read_err) {
        rc = strata_err_set(err, STRATA_EIO, "%s: read error", path);
        goto done;
    }
    if (b.oom || b.len > MAN_MAX_BYTES) {
        rc = strata_err_set(err, STRATA_ECORRUPT, "%s: larger than %u bytes", path, MAN_MAX_BYTES);
        goto done;
    }
    if (b.len < 40 || memcmp(b.data, MAN_MAGIC, 8) != 0) {
        rc = strata_err_set(err, STRATA_ECORRUPT, "%s: not a strata manifest (bad magic or size)",
                            path);
        goto done;
    }
    cursor c = cursor_make(b.data, b.len - 8);
    cursor_take(&c, 8);
    uint32_t version = cursor_u32(&c);
    if (version != MAN_VERSION && version != MAN_VERSION_DV) {
        rc = strata_err_set(err, STRATA_EVERSION, "%s: format version %u, this build reads %u and %u",
                            path, version, MAN_VERSION, MAN_VERSION_DV);
        goto done;
    }
    uint64_t sum = load_u64le(b.data + b.len - 8);
    if (XXH3_64bits(b.data, b.len - 8) != sum) {
        rc = strata_err_set(err, STRATA_ECORRUPT, "%s: checksum mismatch", path);
        goto done;
    }
    uint32_t flags = cursor_u32(&c);
    m->generation = cursor_u64(&c);
    uint32_t nsegs = cursor_u32(&c), ncps = cursor_u32(&c);
    if (flags != 0 || (uint64_t)nsegs * 44 > cursor_left(&c) ||
        (uint64_t)ncps * 15 > cursor_left(&c)) {
        rc = strata_err_set(err, STRATA_ECORRUPT, "%s: header fields do not fit the file", path);
        goto done;
    }
    for (uint32_t i = 0; i < nsegs && rc == 0; i++) {
        manifest_segment s;
        s.id = cursor_u64(&c);
        s.rows = cursor_u64(&c);
        s.bytes = cursor_u64(&c);
        s.min_time = (int64_t)cursor_u64(&c);
        s.max_time = (int64_t)cursor_u64(&c);
        s.level = cursor_u32(&c);
        if (manifest_add_segment(m, &s) != 0)
            rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
    }
    for (uint32_t i = 0; i < ncps && rc == 0; i++) {
        uint16_t len = cursor_u16(&c);
        const uint8_t *src = cursor_take(&c, len);
        int32_t part = (int32_t)cursor_u32(&c);
        int64_t next = (int64_t)cursor_u64(&c);
        if (c.bad || len == 0 || len >= MANIFEST_SOURCE_MAX || memchr(src, 0, len)) {
            rc = strata_err_set(err, STRATA_ECORRUPT, "%s: checkpoint %u is malformed", path, i);
            break;
        }
        char name[MANIFEST_SOURCE_MAX];
        memcpy(name, src, len);
        name[len] = 0;
        if (manifest_set_checkpoint(m, name, part, next) != 0)
            rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
    }
    uint32_t ndvs = version == MAN_VERSION_DV && rc == 0 ? cursor_u32(&c) : 0;
    for (uint32_t i = 0; i < ndvs && rc == 0; i++) {
        uint64_t id = cursor_u64(&c);
        uint32_t len = cursor_u32(&c);
        const uint8_t *p = cursor_take(&c, len);
        if (c.bad || len == 0 || manifest_get_dv(m, id)) {
            rc = strata_err_set(err, STRATA_ECORRUPT, "%s: delete vector %u is malformed", path, i);
            break;
        }
        if (manifest_set_dv(m, id, p, len) != 0)
            rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
    }
    if (rc == 0 && (c.bad || cursor_left(&c) != 0))
        rc = strata_err_set(err, STRATA_ECORRUPT, "%s: entries do not fill the file exactly", path);
done:
    buf_free(&b);
    if (rc)
        manifest_free(m);
    return rc;
}

int manifest_write(const char *dir, const manifest *m, bool *renamed, strata_err *err)
{
    if (renamed)
        *renamed = false;
    bytebuf b = {0};
    buf_put(&b, MAN_MAGIC, 8);
    buf_put_u32(&b, m->ndvs ? MAN_VERSION_DV : MAN_VERSION);
    buf_put_u32(&b, 0);
    buf_put_u64(&b, m->generation);
    buf_put_u32(&b, m->nsegs);
    buf_put_u32(&b, m->ncps);
    for (uint32_t i = 0; i < m->nsegs; i++) {
        const manifest_segment *s = &m->segs[i];
        buf_put_u64(&b, s->id);
        buf_put_u64(&b, s->rows);
        buf_put_u64(&b, s->bytes);
        buf_put_u64(&b, (uint64_t)s->min_time);
        buf_put_u64(&b, (uint64_t)s->max_time);
        buf_put_u32(&b, s->level);
    }
    for (uint32_t i = 0; i < m->ncps; i++) {
        size_t len = strlen(m->cps[i].source);
        buf_put_u16(&b, (uint16_t)len);
        buf_put(&b, m->cps[i].source, len);
        buf_put_u32(&b, (uint32_t)m->cps[i].partition);
        buf_put_u64(&b, (uint64_t)m->cps[i].next_offset);
    }
    if (m->ndvs) {
        buf_put_u32(&b, m->ndvs);
        for (uint32_t i = 0; i < m->ndvs; i++) {
            buf_put_u64(&b, m->dvs[i].seg_id);
            buf_put_u32(&b, m->dvs[i].len);
            buf_put(&b, m->dvs[i].data, m->dvs[i].len);
        }
    }
    if (b.oom) {
        buf_free(&b);
        return strata_err_set(err, STRATA_ENOMEM, "%s: out of memory writing the manifest", dir);
    }
    buf_put_u64(&b, XXH3_64bits(b.data, b.len));
    char tmp[4096], path[4096];
    int rc = fs_path(tmp, sizeof tmp, err, "%s/%s", dir, MANIFEST_TMP_NAME);
    if (rc == 0)
        rc = fs_path(path, sizeof path, err, "%s/%s", dir, MANIFEST_NAME);
    if (rc)
        goto done;
    fs_failure fail;
    if (fs_write_atomic(dir, path, tmp, b.data, b.len, 0, &fail) != 0) {
        if (fail.step < FS_STEP_DIR_OPEN) {
            rc = strata_err_set(err, STRATA_EIO, "%s: %s: %s", tmp, fs_step_name(fail.step),
                                strerror(fail.errnum));
            goto done;
        }
        rc = strata_err_set(err, STRATA_EIO, "%s: fsync directory after the commit: %s", dir,
                            strerror(fail.errnum));
    }
    if (renamed)
        *renamed = true;
done:
    buf_free(&b);
    return rc;
}
