/*
 * compress.c — LZ4/zstd block compression with reusable contexts. See compress.h.
 */
#include "engine/compress.h"

#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "engine/error.h"

struct compressor {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    int zstd_level;
};

compressor *compressor_create(int zstd_level)
{
    compressor *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cctx = ZSTD_createCCtx();
    c->dctx = ZSTD_createDCtx();
    c->zstd_level = zstd_level;
    if (!c->cctx || !c->dctx) {
        compressor_free(c);
        return NULL;
    }
    return c;
}

void compressor_free(compressor *c)
{
    if (!c)
        return;
    ZSTD_freeCCtx(c->cctx);
    ZSTD_freeDCtx(c->dctx);
    free(c);
}

const char *compress_codec_name(strata_codec codec)
{
    switch (codec) {
    case STRATA_CODEC_NONE: return "none";
    case STRATA_CODEC_LZ4: return "lz4";
    case STRATA_CODEC_ZSTD: return "zstd";
    default: return "unknown";
    }
}

strata_codec compress_block(compressor *c, bytebuf *out, const void *src, size_t n, strata_codec codec)
{
    size_t start = out->len;
    if (codec == STRATA_CODEC_LZ4 && n <= LZ4_MAX_INPUT_SIZE) {
        int bound = LZ4_compressBound((int)n);
        if (buf_reserve(out, (size_t)bound)) {
            int got = LZ4_compress_default(src, (char *)out->data + start, (int)n, bound);
            if (got > 0 && (size_t)got < n) {
                out->len += (size_t)got;
                return STRATA_CODEC_LZ4;
            }
        }
    } else if (codec == STRATA_CODEC_ZSTD) {
        size_t bound = ZSTD_compressBound(n);
        if (buf_reserve(out, bound)) {
            size_t got =
                ZSTD_compressCCtx(c->cctx, out->data + start, bound, src, n, c->zstd_level);
            if (!ZSTD_isError(got) && got < n) {
                out->len += got;
                return STRATA_CODEC_ZSTD;
            }
        }
    }
    buf_put(out, src, n);
    return STRATA_CODEC_NONE;
}

int decompress_block(compressor *c, strata_codec codec, const void *src, size_t n, void *dst,
                     size_t raw_len)
{
    switch (codec) {
    case STRATA_CODEC_NONE:
        if (n != raw_len)
            return STRATA_ECORRUPT;
        memcpy(dst, src, n);
        return 0;
    case STRATA_CODEC_LZ4: {
        if (n > INT32_MAX || raw_len > INT32_MAX)
            return STRATA_ECORRUPT;
        int got = LZ4_decompress_safe(src, dst, (int)n, (int)raw_len);
        return got == (int)raw_len ? 0 : STRATA_ECORRUPT;
    }
    case STRATA_CODEC_ZSTD: {
        size_t got = ZSTD_decompressDCtx(c->dctx, dst, raw_len, src, n);
        return !ZSTD_isError(got) && got == raw_len ? 0 : STRATA_ECORRUPT;
    }
    default: return STRATA_ECORRUPT;
    }
}
