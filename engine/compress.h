/*
 * compress.h — block compression for segment blocks: none, LZ4 or zstd.
 *
 * A compressor keeps the zstd contexts it reuses across blocks; one per thread.
 * compress_block stores a block uncompressed (codec none) when compression would not
 * make it smaller, so a reader never pays to decompress incompressible data.
 */
#ifndef STRATA_COMPRESS_H
#define STRATA_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/buf.h"
#include "engine/schema.h"

typedef struct compressor compressor;

/* zstd_level applies to zstd blocks (1..19). Returns NULL when out of memory.
 * Free with compressor_free. */
compressor *compressor_create(int zstd_level);
void compressor_free(compressor *c);

/* Appends the compressed form of src[0..n) to out and returns the codec used (the
 * requested one, or STRATA_CODEC_NONE when that is not smaller). Allocation failure is
 * reported through out->oom. */
strata_codec compress_block(compressor *c, bytebuf *out, const void *src, size_t n, strata_codec codec);

/* Decompresses exactly raw_len bytes into dst (capacity raw_len). Returns 0, or
 * STRATA_ECORRUPT when the input does not decompress to exactly raw_len bytes. */
int decompress_block(compressor *c, strata_codec codec, const void *src, size_t n, void *dst,
                     size_t raw_len);

/* "none", "lz4", "zstd"; "unknown" otherwise. */
const char *compress_codec_name(strata_codec codec);

#endif
